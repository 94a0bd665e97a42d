"""The hand-written fixture: eight tasks over six small deterministic tools.

The tools are the calculator (:data:`toolpath.tools.calculator`), a unit converter, two
lookups in a table of cities (population, country), a country's currency and a table of
currency rates. Each task's gold calls need 2 to 4 calls; in six of the eight a later call
takes an earlier call's result (written ``"$N"``, as the one-step agent plans). The gold
answers are written out by hand, and a test checks that running the gold calls gives them.

``key`` lists the arguments a call must match for ``calls_match``: the calculator's
expression is left out (``2752000 - 1464000`` and ``2752000-1464000`` are the same call).
"""

from __future__ import annotations

from typing import Any, Literal

from toolpath.errors import ToolError
from toolpath.tools.base import Tool, tool
from toolpath.tools.calculator import calculator

CITIES = {
    "osaka": ("Japan", 2752000),
    "kyoto": ("Japan", 1464000),
    "lyon": ("France", 522000),
    "porto": ("Portugal", 232000),
    "cusco": ("Peru", 428000),
    "geneva": ("Switzerland", 203000),
}
CURRENCIES = {"japan": "JPY", "france": "EUR", "portugal": "EUR", "peru": "PEN"}
CURRENCIES["switzerland"] = "CHF"
PER_USD = {"USD": 1.0, "EUR": 0.92, "JPY": 151.2, "PEN": 3.75, "CHF": 0.88, "GBP": 0.79}
"""Units of each currency one US dollar buys."""
FACTORS = {("mi", "km"): 1.609344, ("kg", "lb"): 2.20462, ("m", "ft"): 3.28084}

Unit = Literal["km", "mi", "kg", "lb", "m", "ft", "C", "F"]


def _city(city: str) -> tuple[str, int]:
    found = CITIES.get(city.strip().lower())
    if found is None:
        raise ToolError(f"unknown city {city!r}; known: {', '.join(c.title() for c in CITIES)}")
    return found


@tool
def city_population(city: str) -> int:
    """The number of people living in a city.

    Args:
        city: City name, e.g. 'Lyon'
    """
    return _city(city)[1]


@tool
def city_country(city: str) -> str:
    """The country a city is in.

    Args:
        city: City name, e.g. 'Lyon'
    """
    return _city(city)[0]


@tool
def country_currency(country: str) -> str:
    """The ISO 4217 code of the currency used in a country.

    Args:
        country: Country name, e.g. 'France'
    """
    code = CURRENCIES.get(country.strip().lower())
    if code is None:
        raise ToolError(f"unknown country {country!r}")
    return code


@tool
def currency_rate(base: str, target: str) -> float:
    """How many units of the target currency one unit of the base currency buys.

    Args:
        base: ISO 4217 code of the currency to convert from, e.g. 'USD'
        target: ISO 4217 code of the currency to convert to, e.g. 'EUR'
    """
    missing = [c for c in (base, target) if c.upper() not in PER_USD]
    if missing:
        raise ToolError(f"unknown currency {missing[0]!r}; use one of {', '.join(PER_USD)}")
    return round(PER_USD[target.upper()] / PER_USD[base.upper()], 4)


@tool
def convert_units(value: float, from_unit: Unit, to_unit: Unit) -> float:
    """Convert a value between units: km and mi, kg and lb, m and ft, C and F (temperatures).

    Args:
        value: The value to convert
        from_unit: The value's unit
        to_unit: The unit to convert to
    """
    if from_unit == to_unit:
        return value
    if (from_unit, to_unit) == ("C", "F"):
        return round(value * 9 / 5 + 32, 2)
    if (from_unit, to_unit) == ("F", "C"):
        return round((value - 32) * 5 / 9, 2)
    if (from_unit, to_unit) in FACTORS:
        return round(value * FACTORS[(from_unit, to_unit)], 2)
    if (to_unit, from_unit) in FACTORS:
        return round(value / FACTORS[(to_unit, from_unit)], 2)
    raise ToolError(f"cannot convert {from_unit} to {to_unit}")


TOOLS: dict[str, Tool] = {
    t.name: t
    for t in (
        calculator,
        convert_units,
        city_population,
        city_country,
        country_currency,
        currency_rate,
    )
}
"""The fixture's tools by name; every fixture task shows all six."""


def call(name: str, key: tuple[str, ...] | None = None, **arguments: Any) -> dict[str, Any]:
    """A gold call; ``key`` (default: every argument) is what ``calls_match`` compares."""
    return {"name": name, "arguments": arguments, "key": list(arguments if key is None else key)}


TASKS: list[dict[str, Any]] = [
    {
        "id": "fixture-01",
        "request": "How many more people live in Osaka than in Kyoto?",
        "calls": [
            call("city_population", city="Osaka"),
            call("city_population", city="Kyoto"),
            call("calculator", (), expression="$1 - $2"),
        ],
        "answer": [1288000],
    },
    {
        "id": "fixture-02",
        "request": "A marathon is 26.2 miles. How many kilometres is that, and how many hours "
        "does it take to run at 12 km per hour?",
        "calls": [
            call("convert_units", value=26.2, from_unit="mi", to_unit="km"),
            call("calculator", (), expression="$1 / 12"),
        ],
        "answer": [42.16, 3.51],
    },
    {
        "id": "fixture-03",
        "request": "In which country is Porto, and what is the currency code used there?",
        "calls": [call("city_country", city="Porto"), call("country_currency", country="$1")],
        "answer": ["Portugal", "EUR"],
    },
    {
        "id": "fixture-04",
        "request": "How many units of the local currency do 250 US dollars buy in the country "
        "where Osaka is?",
        "calls": [
            call("city_country", city="Osaka"),
            call("country_currency", country="$1"),
            call("currency_rate", base="USD", target="$2"),
            call("calculator", (), expression="250 * $3"),
        ],
        "answer": [37800],
    },
    {
        "id": "fixture-05",
        "request": "What is 98.6 degrees Fahrenheit in Celsius, and 20 degrees Celsius in "
        "Fahrenheit?",
        "calls": [
            call("convert_units", value=98.6, from_unit="F", to_unit="C"),
            call("convert_units", value=20, from_unit="C", to_unit="F"),
        ],
        "answer": [37, 68],
    },
    {
        "id": "fixture-06",
        "request": "What is the combined population of Lyon and Porto?",
        "calls": [
            call("city_population", city="Lyon"),
            call("city_population", city="Porto"),
            call("calculator", (), expression="$1 + $2"),
        ],
        "answer": [754000],
    },
    {
        "id": "fixture-07",
        "request": "How many Swiss francs do 80 euros buy?",
        "calls": [
            call("currency_rate", base="EUR", target="CHF"),
            call("calculator", (), expression="80 * $1"),
        ],
        "answer": [76.52],
    },
    {
        "id": "fixture-08",
        "request": "Which country is Cusco in, and how many people live there?",
        "calls": [call("city_country", city="Cusco"), call("city_population", city="Cusco")],
        "answer": ["Peru", 428000],
    },
]
"""The tasks: ``id``, ``request``, gold ``calls`` (``"$N"``: step N's result) and ``answer``
(every value must appear in the final answer)."""
