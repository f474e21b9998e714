"""What a half-hour costs: tariff codes and product families, the rate book (rates fetched for the
periods asked, kept per tariff and kind), the price of a half-hour (the agreement in force, its rate,
Intelligent Octopus dispatches and the car's allowance), standing charges and the unit-rate points.

May import: api, base. The dispatch log it prices from is data (intelligent.py); reading dispatches
from GraphQL is an extra's work (extras/dispatches.py)."""
