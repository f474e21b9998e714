"""Carbon intensity per half-hour (OCTO_CARBON): `carbon.py` asks the grid operator's Carbon Intensity API
for the home's region and prints octopus_carbon; `table.py` keeps what it answered, compactly."""
