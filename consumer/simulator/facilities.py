"""USPS processing facilities the simulator routes mail through.

The names, cities, ZIPs and street addresses are those of real USPS Processing & Distribution
Centers as far as public knowledge goes; the locale keys are invented (6-digit numeric, the
shape seen in live IV-MTR traffic, see ivmtr.md §1.1) and the ZIP3 service areas are rough.
The table is illustrative: good enough to give each scan a plausible facility, time zone and
destination, not a source of truth about the USPS network.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

__all__ = [
    "FACILITIES",
    "Facility",
    "facility_by_locale_key",
    "facility_for_zip",
]


@dataclass(frozen=True)
class Facility:
    """One processing plant: what IV-MTR prints in the scanFacility* fields, plus routing data."""

    name: str  # scanFacilityName
    city: str  # scanFacilityCity
    state: str  # scanFacilityState
    zip5: str  # scanFacilityZip
    locale_key: str  # scanLocaleKey
    address: str  # facAddr / startTheClockFacilityAddress
    tz: str  # IANA zone name; scanDatetime is local to the facility
    zip3s: tuple[str, ...]  # destination ZIP3s this plant processes (its rough service area)

    @property
    def zone(self) -> ZoneInfo:
        """The facility's time zone (ZoneInfo caches instances, so this is cheap)."""
        return ZoneInfo(self.tz)


_NY = "America/New_York"
_CHI = "America/Chicago"
_DEN = "America/Denver"
_LA = "America/Los_Angeles"

FACILITIES: tuple[Facility, ...] = (
    Facility(
        "BOSTON MA P&DC",
        "Boston",
        "MA",
        "02205",
        "001107",
        "25 Dorchester Ave",
        _NY,
        ("021", "022", "024"),
    ),
    Facility(
        "NORTHERN NJ METRO P&DC",
        "Teterboro",
        "NJ",
        "07699",
        "002684",
        "150 Industrial Ave",
        _NY,
        ("070", "071", "072", "073", "074", "075", "076"),
    ),
    Facility(
        "NEW YORK NY MORGAN P&DC",
        "New York",
        "NY",
        "10199",
        "003314",
        "341 9th Ave",
        _NY,
        ("100", "101", "102", "104"),
    ),
    Facility(
        "BROOKLYN NY P&DC", "Brooklyn", "NY", "11256", "003392", "1050 Forbell St", _NY, ("112",)
    ),
    Facility(
        "PITTSBURGH PA P&DC",
        "Pittsburgh",
        "PA",
        "15290",
        "004751",
        "1001 California Ave",
        _NY,
        ("150", "151", "152", "153", "154", "156", "160"),
    ),
    Facility(
        "PHILADELPHIA PA P&DC",
        "Philadelphia",
        "PA",
        "19176",
        "005026",
        "7500 Lindbergh Blvd",
        _NY,
        ("190", "191", "193", "194"),
    ),
    Facility(
        "WASHINGTON DC CURSEEN-MORRIS P&DC",
        "Washington",
        "DC",
        "20066",
        "001288",
        "900 Brentwood Rd NE",
        _NY,
        ("200", "202", "203", "204", "205"),
    ),
    Facility(
        "BALTIMORE MD P&DC",
        "Baltimore",
        "MD",
        "21233",
        "001214",
        "900 E Fayette St",
        _NY,
        ("210", "211", "212", "214", "217", "219"),
    ),
    Facility(
        "MERRIFIELD VA P&DC",
        "Merrifield",
        "VA",
        "22081",
        "001376",
        "8409 Lee Hwy",
        _NY,
        ("201", "220", "221", "222", "223"),
    ),
    Facility(
        "CHARLOTTE NC P&DC",
        "Charlotte",
        "NC",
        "28228",
        "006118",
        "2901 S I 85 Service Rd",
        _NY,
        ("280", "281", "282", "297"),
    ),
    Facility(
        "ATLANTA GA P&DC",
        "Atlanta",
        "GA",
        "30304",
        "006560",
        "3900 Crown Rd SW",
        _NY,
        ("300", "301", "302", "303", "311", "399"),
    ),
    Facility(
        "ORLANDO FL P&DC",
        "Orlando",
        "FL",
        "32862",
        "007073",
        "10401 Tradeport Dr",
        _NY,
        ("327", "328", "329", "347"),
    ),
    Facility(
        "MIAMI FL P&DC",
        "Miami",
        "FL",
        "33152",
        "007140",
        "2200 NW 72nd Ave",
        _NY,
        ("330", "331", "332"),
    ),
    Facility(
        "COLUMBUS OH P&DC",
        "Columbus",
        "OH",
        "43216",
        "008239",
        "2400 Twin Creeks Dr",
        _NY,
        ("430", "431", "432", "433"),
    ),
    Facility(
        "DETROIT MI P&DC",
        "Detroit",
        "MI",
        "48233",
        "009021",
        "1401 W Fort St",
        "America/Detroit",
        ("481", "482", "483"),
    ),
    Facility(
        "INDIANAPOLIS IN P&DC",
        "Indianapolis",
        "IN",
        "46298",
        "008712",
        "3939 Vincennes Rd",
        "America/Indiana/Indianapolis",
        ("460", "461", "462"),
    ),
    Facility(
        "NASHVILLE TN P&DC",
        "Nashville",
        "TN",
        "37229",
        "007785",
        "525 Royal Pkwy",
        _CHI,
        ("370", "371", "372"),
    ),
    Facility(
        "CHICAGO IL CARDISS COLLINS P&DC",
        "Chicago",
        "IL",
        "60607",
        "010354",
        "433 W Harrison St",
        _CHI,
        ("606", "607", "608"),
    ),
    Facility(
        "CAROL STREAM IL P&DC",
        "Carol Stream",
        "IL",
        "60199",
        "010287",
        "500 E Fullerton Ave",
        _CHI,
        ("601", "603", "604", "605"),
    ),
    Facility(
        "MINNEAPOLIS MN P&DC",
        "Minneapolis",
        "MN",
        "55401",
        "011402",
        "100 S 1st St",
        _CHI,
        ("553", "554", "555"),
    ),
    Facility(
        "SAINT LOUIS MO P&DC",
        "Saint Louis",
        "MO",
        "63155",
        "012066",
        "1720 Market St",
        _CHI,
        ("630", "631", "633"),
    ),
    Facility(
        "KANSAS CITY MO P&DC",
        "Kansas City",
        "MO",
        "64121",
        "012193",
        "1700 Cleveland Ave",
        _CHI,
        ("640", "641", "660", "661", "662"),
    ),
    Facility(
        "DALLAS TX P&DC",
        "Dallas",
        "TX",
        "75260",
        "013447",
        "401 DFW Turnpike",
        _CHI,
        ("750", "751", "752", "753"),
    ),
    Facility(
        "NORTH HOUSTON TX P&DC",
        "Houston",
        "TX",
        "77315",
        "013630",
        "4600 Aldine Bender Rd",
        _CHI,
        ("770", "772", "773", "774", "775"),
    ),
    Facility(
        "DENVER CO P&DC",
        "Denver",
        "CO",
        "80266",
        "014218",
        "7500 E 53rd Pl",
        _DEN,
        ("800", "801", "802", "803", "804", "805"),
    ),
    Facility(
        "SALT LAKE CITY UT P&DC",
        "Salt Lake City",
        "UT",
        "84199",
        "014871",
        "1760 W 2100 S",
        _DEN,
        ("840", "841", "843", "844"),
    ),
    Facility(
        "PHOENIX AZ P&DC",
        "Phoenix",
        "AZ",
        "85026",
        "015039",
        "4949 E Van Buren St",
        "America/Phoenix",
        ("850", "852", "853"),
    ),
    Facility(
        "LOS ANGELES CA P&DC",
        "Los Angeles",
        "CA",
        "90052",
        "015594",
        "7001 S Central Ave",
        _LA,
        ("900", "902", "903", "904", "905"),
    ),
    Facility(
        "SAN FRANCISCO CA P&DC",
        "San Francisco",
        "CA",
        "94188",
        "016270",
        "1300 Evans Ave",
        _LA,
        ("940", "941", "943", "944"),
    ),
    Facility(
        "PORTLAND OR P&DC",
        "Portland",
        "OR",
        "97218",
        "016833",
        "7007 NE Cornfoot Rd",
        _LA,
        ("970", "971", "972", "973"),
    ),
    Facility(
        "SEATTLE WA P&DC",
        "Seattle",
        "WA",
        "98168",
        "016915",
        "10700 27th Ave S",
        _LA,
        ("980", "981"),
    ),
)

_BY_ZIP3: dict[str, Facility] = {z: f for f in FACILITIES for z in f.zip3s}
_BY_LOCALE_KEY: dict[str, Facility] = {f.locale_key: f for f in FACILITIES}
_KNOWN_ZIP3S: tuple[int, ...] = tuple(sorted(int(z) for z in _BY_ZIP3))


def facility_for_zip(zip5: str) -> Facility:
    """The plant that processes mail destined for `zip5` (a ZIP5, or anything starting with a ZIP3).

    ZIP3s outside the table go to the plant serving the numerically nearest known ZIP3; ZIP
    prefixes are regional, so that is the right region even if not the right plant.
    """
    zip3 = zip5[:3]
    found = _BY_ZIP3.get(zip3)
    if found is not None:
        return found
    if len(zip3) != 3 or not zip3.isdigit():
        raise ValueError(f"not a ZIP code: {zip5!r}")
    wanted = int(zip3)
    nearest = min(_KNOWN_ZIP3S, key=lambda known: (abs(known - wanted), known))
    return _BY_ZIP3[f"{nearest:03d}"]


def facility_by_locale_key(locale_key: str) -> Facility | None:
    """The facility with this scanLocaleKey, or None (e.g. the empty key of a 517 event)."""
    return _BY_LOCALE_KEY.get(locale_key)
