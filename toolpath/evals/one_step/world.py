"""Executable versions of the synthetic catalog's APIs: every result a deterministic function of
the arguments.

:func:`~toolpath.retrieval.synthetic.synthetic_catalog` describes tools such as
``get_weather_forecast_12`` but cannot run them. Here each of its API nouns that a task can
chain (``geocode_address``, ``weather_forecast``, ``stock_quote``, ``exchange_rate``...) is a
real tool over a small made-up world: a value is drawn from a random generator seeded by a
hash of the tool and its normalized arguments (so ``"Paris"`` and ``" paris"`` agree, and
coordinates are compared to two decimals), or read from a fixed table (currency rates,
airports).

A value that a later call takes is the whole result: ``geocode_address`` returns
``"48.85,2.35"`` (what ``weather_forecast``'s ``location`` takes), ``stock_quote`` a number
(what ``exchange_rate``'s ``amount`` takes), ``airport_info`` a city name. The one-step agent
refers to an earlier result only as a whole (``"$1"``), so this keeps a dependent task
solvable by every agent; the values an answer reads are fields of a small JSON object.

The world's functions (:func:`coords`, :func:`quote`...) are public: the task generator
computes gold answers with them, apart from the tools' text in and out. :data:`CATALOG` holds
the tools by name.
"""

from __future__ import annotations

import hashlib
import random
import re
from typing import Any, Literal

from toolpath.errors import ToolError
from toolpath.tools.base import Tool, tool

USD_RATES = {
    "USD": 1.0,
    "EUR": 0.92,
    "GBP": 0.79,
    "JPY": 151.2,
    "CHF": 0.88,
    "CAD": 1.36,
    "AUD": 1.52,
    "INR": 83.1,
    "BRL": 5.05,
}
"""Units of each currency one US dollar buys."""
AIRPORTS = {
    "FRA": "Frankfurt",
    "JFK": "New York",
    "NRT": "Tokyo",
    "CDG": "Paris",
    "LHR": "London",
    "SYD": "Sydney",
    "GRU": "Sao Paulo",
    "DXB": "Dubai",
    "AMS": "Amsterdam",
    "YYZ": "Toronto",
    "SIN": "Singapore",
    "MAD": "Madrid",
}
CONDITIONS = ("sunny", "cloudy", "rain", "showers", "snow", "fog", "windy")
FIRST = ("Ana", "Marco", "Yuki", "Lena", "Omar", "Ines", "Tariq", "Sofia", "Jonas", "Priya")
LAST = ("Silva", "Rossi", "Tanaka", "Novak", "Haddad", "Moreau", "Berg", "Okafor", "Lindqvist")
CITIES = ("Lisbon", "Vienna", "Oslo", "Seoul", "Lima", "Nairobi", "Montreal", "Krakow", "Osaka")
ADJECTIVES = ("Smoky", "Golden", "Spicy", "Herbed", "Crispy", "Creamy", "Roasted", "Zesty")
DISHES = ("Stew", "Salad", "Curry", "Tacos", "Bowl", "Soup", "Skillet", "Wraps")
PLACES = ("Cafe", "Bakery", "Pharmacy", "Bookshop", "Park", "Museum", "Market")
STATUSES = ("on time", "delayed", "boarding", "landed", "cancelled")


def rng(*parts: Any) -> random.Random:
    """A random generator seeded by a hash of ``parts`` (normalized: case, spaces, floats)."""
    key = "|".join(norm_key(p) for p in parts)
    return random.Random(int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big"))


def norm_key(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return " ".join(str(value).lower().split())


def person(r: random.Random) -> str:
    return f"{r.choice(FIRST)} {r.choice(LAST)}"


# --------------------------------------------------------------------------- the world


def coords(address: str) -> tuple[float, float]:
    """The made-up coordinates of an address (or a city name)."""
    r = rng("geocode", address)
    return round(r.uniform(-45, 65), 2), round(r.uniform(-170, 170), 2)


def parse_coords(location: str) -> tuple[float, float]:
    """``"48.85,2.35"`` (spaces and parentheses allowed) as numbers; a ToolError otherwise."""
    found = re.fullmatch(r"\s*\(?\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\)?\s*", location)
    if not found:
        raise ToolError(
            f"location must be coordinates 'lat,lon' such as '48.85,2.35', not {location!r}; "
            "geocode_address gives the coordinates of an address"
        )
    return round(float(found.group(1)), 2), round(float(found.group(2)), 2)


def forecast(lat: float, lon: float, days: int) -> dict[str, Any]:
    r = rng("forecast", lat, lon, days)
    high = round(r.uniform(-5, 35), 1)
    low = round(high - r.uniform(3, 10), 1)
    return {"days_ahead": days, "high_c": high, "low_c": low, "condition": r.choice(CONDITIONS)}


def air(lat: float, lon: float) -> dict[str, Any]:
    aqi = rng("air", lat, lon).randint(8, 180)
    level = "good" if aqi <= 50 else "moderate" if aqi <= 100 else "unhealthy"
    return {"aqi": aqi, "level": level}


def uv(lat: float, lon: float) -> dict[str, Any]:
    return {"uv_index": rng("uv", lat, lon).randint(0, 11)}


def weather_now(city: str) -> dict[str, Any]:
    r = rng("weather", city)
    return {
        "city": city,
        "temperature_c": round(r.uniform(-10, 38), 1),
        "condition": r.choice(CONDITIONS),
    }


def quote(symbol: str) -> float:
    return round(rng("stock", symbol.upper()).uniform(20, 900), 2)


def crypto(symbol: str) -> float:
    r = rng("crypto", symbol.upper())
    return round(r.uniform(20000, 70000) if symbol.upper() == "BTC" else r.uniform(0.5, 4000), 2)


def convert(amount: float, currency: str, target: str) -> dict[str, Any]:
    """``amount`` in ``currency`` as ``target``, at the fixed table's rate (4 decimals)."""
    missing = [c for c in (currency, target) if c.upper() not in USD_RATES]
    if missing:
        raise ToolError(
            f"unknown currency {missing[0]!r}; use one of {', '.join(USD_RATES)} (ISO 4217 codes)"
        )
    rate = round(USD_RATES[target.upper()] / USD_RATES[currency.upper()], 4)
    return {"rate": rate, "converted": round(amount * rate, 2)}


def airport_city(code: str) -> str:
    city = AIRPORTS.get(code.strip().upper())
    if city is None:
        raise ToolError(f"unknown airport code {code!r}; known: {', '.join(AIRPORTS)}")
    return city


def hotel_price(city: str) -> float:
    return round(rng("hotel", city).uniform(60, 420), 2)


def flight_price(origin: str, destination: str, adults: int) -> float:
    return round(rng("flight", origin.upper(), destination.upper()).uniform(90, 1400) * adults, 2)


def flight(flight_number: str) -> dict[str, Any]:
    r = rng("status", flight_number.replace(" ", "").upper())
    status = r.choice(STATUSES)
    return {"status": status, "delay_min": r.randint(10, 180) if status == "delayed" else 0}


def chart_top(country: str) -> str:
    r = rng("chart", country.upper())
    return f"{r.choice(('DJ', 'MC', 'Lil', 'Saint', 'The'))} {r.choice(LAST)}"


def concert_city(artist: str) -> str:
    return rng("concert", artist).choice(CITIES)


def league_leader(league: str) -> str:
    r = rng("league", league)
    return f"{r.choice(CITIES)} {r.choice(('United', 'Rovers', 'Athletic', 'City', 'Wanderers'))}"


def roster(team: str) -> dict[str, Any]:
    r = rng("roster", team)
    return {"team": team, "captain": person(r), "coach": person(r), "players": r.randint(22, 30)}


def top_recipe(query: str, diet: str) -> str:
    r = rng("recipe", query, diet)
    return f"{r.choice(ADJECTIVES)} {query.strip().title()} {r.choice(DISHES)}"


def nutrition(query: str) -> dict[str, Any]:
    r = rng("nutrition", query)
    return {"calories": r.randint(120, 900), "protein_g": r.randint(2, 45)}


def salary(title: str, location: str) -> float:
    return float(rng("salary", title, location).randrange(30000, 160000, 500))


def company(symbol: str) -> dict[str, Any]:
    r = rng("company", symbol.upper())
    return {
        "symbol": symbol.upper(),
        "employees": r.randrange(800, 200000, 100),
        "founded": r.randint(1900, 2015),
    }


def movie(title: str) -> dict[str, Any]:
    r = rng("movie", title)
    return {"title": title, "year": r.randint(1975, 2024), "director": person(r)}


def gross(title: str) -> dict[str, Any]:
    return {"title": title, "gross_usd_m": round(rng("gross", title).uniform(1, 900), 1)}


def distance(
    origin: tuple[float, float], destination: tuple[float, float], mode: str
) -> dict[str, Any]:
    r = rng("distance", *origin, *destination, mode)
    km = round(r.uniform(2, 2500), 1)
    speed = {"driving": 70, "transit": 45, "walking": 5}.get(mode, 60)
    return {"distance_km": km, "duration_min": round(60 * km / speed)}


def nearby(lat: float, lon: float, radius: int) -> dict[str, Any]:
    r = rng("nearby", lat, lon, radius)
    name = f"{r.choice(ADJECTIVES)} {r.choice(PLACES)}"
    return {"closest": name, "distance_m": r.randint(20, max(21, radius))}


# --------------------------------------------------------------------------- the tools

Mode = Literal["driving", "walking", "transit"]


@tool
def geocode_address(address: str) -> str:
    """Find the coordinates of a street address or a city. Returns 'lat,lon', e.g. '48.85,2.35'.

    Args:
        address: Street address or city name
    """
    lat, lon = coords(address)
    return f"{lat:.2f},{lon:.2f}"


@tool
def weather_forecast(location: str, days: int = 1) -> dict[str, Any]:
    """Weather forecast for coordinates: high and low in degrees Celsius and the condition.

    Args:
        location: Coordinates as 'lat,lon', e.g. '48.85,2.35'
        days: Days ahead, 1-14
    """
    if not 1 <= days <= 14:
        raise ToolError("days must be between 1 and 14")
    return forecast(*parse_coords(location), days)


@tool
def air_quality(location: str) -> dict[str, Any]:
    """Air quality index (AQI) at coordinates.

    Args:
        location: Coordinates as 'lat,lon', e.g. '48.85,2.35'
    """
    return air(*parse_coords(location))


@tool
def uv_index(location: str) -> dict[str, Any]:
    """UV index at coordinates.

    Args:
        location: Coordinates as 'lat,lon', e.g. '48.85,2.35'
    """
    return uv(*parse_coords(location))


@tool
def current_weather(city: str) -> dict[str, Any]:
    """Current weather in a city: temperature in degrees Celsius and the condition.

    Args:
        city: City name, e.g. 'Paris'
    """
    return weather_now(city)


@tool
def stock_quote(symbol: str) -> float:
    """Latest price of one share, in US dollars.

    Args:
        symbol: Ticker symbol, e.g. 'AAPL'
    """
    return quote(symbol)


@tool
def crypto_price(symbol: str) -> float:
    """Latest price of one coin of a cryptocurrency, in US dollars.

    Args:
        symbol: Coin symbol, e.g. 'BTC'
    """
    return crypto(symbol)


@tool
def exchange_rate(amount: float, currency: str, target: str) -> dict[str, Any]:
    """Convert an amount of money from one currency to another: the rate and the converted amount.

    Args:
        amount: The amount to convert
        currency: ISO 4217 code of the amount's currency, e.g. 'USD'
        target: ISO 4217 code of the currency to convert to, e.g. 'EUR'
    """
    return convert(amount, currency, target)


@tool
def company_profile(symbol: str) -> dict[str, Any]:
    """A listed company's profile: number of employees and the year it was founded.

    Args:
        symbol: Ticker symbol, e.g. 'AAPL'
    """
    return company(symbol)


@tool
def airport_info(code: str) -> str:
    """The city an airport serves.

    Args:
        code: IATA airport code, e.g. 'FRA'
    """
    return airport_city(code)


@tool
def hotel_offers(city: str) -> float:
    """Lowest price of one hotel night in a city, in US dollars.

    Args:
        city: City name
    """
    return hotel_price(city)


@tool
def flight_prices(origin: str, destination: str, adults: int = 1) -> float:
    """Cheapest total price of a flight for all travellers, in US dollars.

    Args:
        origin: IATA code of the departure airport
        destination: IATA code of the arrival airport
        adults: Number of adult travellers
    """
    if adults < 1:
        raise ToolError("adults must be at least 1")
    return flight_price(origin, destination, adults)


@tool
def flight_status(flight_number: str) -> dict[str, Any]:
    """A flight's status today and its delay in minutes.

    Args:
        flight_number: Flight number, e.g. 'LH400'
    """
    return flight(flight_number)


@tool
def top_charts(country: str) -> str:
    """The artist at number one of a country's music chart this week.

    Args:
        country: Country code, e.g. 'US'
    """
    return chart_top(country)


@tool
def concert_dates(artist: str) -> str:
    """The city of an artist's next concert.

    Args:
        artist: Artist name
    """
    return concert_city(artist)


@tool
def team_standings(league: str) -> str:
    """The team at the top of a league's table.

    Args:
        league: League, e.g. 'Premier League'
    """
    return league_leader(league)


@tool
def team_roster(team: str) -> dict[str, Any]:
    """A team's captain, coach and number of players.

    Args:
        team: Team name
    """
    return roster(team)


@tool
def recipe_search(query: str, diet: str = "none") -> str:
    """The name of the best-rated recipe for a dish or an ingredient.

    Args:
        query: Dish or ingredient
        diet: Diet, e.g. 'vegan', or 'none'
    """
    return top_recipe(query, diet)


@tool
def nutrition_facts(query: str) -> dict[str, Any]:
    """Calories and protein in grams per serving of a recipe or a food.

    Args:
        query: Recipe or food name
    """
    return nutrition(query)


@tool
def salary_estimate(title: str, location: str) -> float:
    """Median yearly salary for a job in a city, in US dollars.

    Args:
        title: Job title
        location: City
    """
    return salary(title, location)


@tool
def movie_details(title: str) -> dict[str, Any]:
    """A movie's release year and director.

    Args:
        title: Movie title
    """
    return movie(title)


@tool
def box_office(title: str) -> dict[str, Any]:
    """A movie's worldwide box office gross in millions of US dollars.

    Args:
        title: Movie title
    """
    return gross(title)


@tool
def distance_matrix(origin: str, destination: str, mode: Mode = "driving") -> dict[str, Any]:
    """Travel distance in kilometres and duration in minutes between two coordinates.

    Args:
        origin: Start as 'lat,lon', e.g. '48.85,2.35'
        destination: End as 'lat,lon'
        mode: 'driving', 'walking' or 'transit'
    """
    return distance(parse_coords(origin), parse_coords(destination), mode)


@tool
def nearby_places(location: str, radius: int = 1000) -> dict[str, Any]:
    """The closest place of interest to coordinates, and how far it is in metres.

    Args:
        location: Coordinates as 'lat,lon', e.g. '48.85,2.35'
        radius: Search radius in meters
    """
    return nearby(*parse_coords(location), radius)


@tool
def market_news(symbol: str) -> dict[str, Any]:
    """The latest headline about a listed company.

    Args:
        symbol: Ticker symbol, e.g. 'AAPL'
    """
    r = rng("news", symbol.upper())
    return {"headline": f"{symbol.upper()} {r.choice(('beats', 'misses', 'meets'))} forecasts"}


CATALOG: dict[str, Tool] = {t.name: t for t in list(globals().values()) if isinstance(t, Tool)}
"""The executable catalog, every tool above by name (each name one of the synthetic catalog's
API nouns), in the order they are defined."""
