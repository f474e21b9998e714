"""The account's Home Mini devices, as GraphQL lists them: one per device and direction, each id checked
as a REST identifier is (printable as a tag, an MPAN or MPRN of the right shape)."""

from dataclasses import dataclass

from octopus_telegraf.api.shapes import ShapeError, listed
from octopus_telegraf.base import log
from octopus_telegraf.base.lineprotocol import LineProtocolError, escape_key
from octopus_telegraf.config.values import METER_POINT

DEVICES_REFRESH_SECONDS = 6 * 3600
DEVICES_QUERY = (
    "query Devices($account: String!) { account(accountNumber: $account) { "
    "electricityAgreements(active: true) { meterPoint { mpan meters(includeInactive: false) { serialNumber "
    "smartImportElectricityMeter { deviceId } smartExportElectricityMeter { deviceId } } } } "
    "gasAgreements(active: true) { meterPoint { mprn meters(includeInactive: false) { serialNumber "
    "smartGasMeter { deviceId } } } } } }")

@dataclass(frozen=True)
class Device:
    device_id: str
    fuel: str  # electricity | gas
    direction: str  # import | export
    point: str  # MPAN or MPRN


def parse_devices(data) -> list[Device]:
    """The Home Mini devices of the account's meters, one per device and direction (a device listed under
    import and export reads both). Ids that could not be printed as tags, or meter points that are not
    an MPAN or MPRN, are left out with one W! line. Raises ShapeError for an answer of another shape."""
    devices, bad = {}, 0
    for fuel, key, id_key, kinds, point_shape in (
            ("electricity", "electricityAgreements", "mpan",
             (("smartImportElectricityMeter", "import"), ("smartExportElectricityMeter", "export")),
             METER_POINT["MPAN"]),
            ("gas", "gasAgreements", "mprn", (("smartGasMeter", "import"),), METER_POINT["MPRN"])):
        for point in listed(data, "account", key, "meterPoint"):
            for meter in listed(point, "meters"):
                for field, direction in kinds:
                    device_id = _device_field(meter.get(field))
                    if device_id is None:
                        continue
                    point_id = point.get(id_key)
                    if not (isinstance(point_id, str) and point_shape.fullmatch(point_id) and _printable(device_id)):
                        bad += 1
                        continue
                    devices[(device_id, direction)] = Device(device_id, fuel, direction, point_id)
    if bad:
        log.warn(f"live: left out {bad} devices whose id or meter point cannot be used")
    return list(devices.values())


def _device_field(value) -> str | None:
    """The deviceId of a smart...Meter field: None when there is none (no Home Mini paired)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ShapeError("a smart meter field is not an object")
    device_id = value.get("deviceId")
    return device_id.strip() if isinstance(device_id, str) and device_id.strip() else None


def _printable(device_id: str) -> bool:
    try:
        escape_key(device_id)
    except LineProtocolError:
        return False
    return len(device_id) <= 100
