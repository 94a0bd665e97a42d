"""The tasks: the hand-written fixture plus tasks generated over the executable catalog.

A :class:`Task` is a request, the tools an agent sees, the gold call sequence (an argument
``"$N"`` is step N's result, as the one-step agent writes it) and the gold answer values.
:func:`generate` builds ``n`` tasks from a seed, deterministically: task ``i`` uses template
``i`` modulo the 20 templates of :data:`TEMPLATES` (14 of them chain calls, so about 70% of
any run have a call that needs an earlier result), its values drawn from a generator seeded
by ``(seed, i)``. Each template computes its gold answer from the world's functions
(:mod:`.world`), apart from the tools, so :func:`run_gold` executing the gold calls through
the tools checks both. A generated task shows its needed tools plus distractors from the
catalog, 6 to 8 tools in all, in a shuffled order.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from toolpath.agents.one_step import REF, fill
from toolpath.errors import ConfigError
from toolpath.evals.one_step import fixture
from toolpath.evals.one_step.fixture import call
from toolpath.evals.one_step.world import (
    AIRPORTS,
    CATALOG,
    air,
    airport_city,
    chart_top,
    company,
    concert_city,
    convert,
    coords,
    crypto,
    distance,
    flight,
    flight_price,
    forecast,
    gross,
    hotel_price,
    league_leader,
    movie,
    nearby,
    nutrition,
    quote,
    roster,
    salary,
    top_recipe,
    weather_now,
)
from toolpath.tools.base import Tool

TOOLS: dict[str, Tool] = {**fixture.TOOLS, **CATALOG}
"""Every tool a task may show, by name (the fixture's and the catalog's)."""

ADDRESSES = (
    "221B Baker Street, London",
    "5 Avenue Anatole France, Paris",
    "350 Fifth Avenue, New York",
    "Unter den Linden 77, Berlin",
    "1 Macquarie Street, Sydney",
    "Rua Augusta 100, Lisbon",
    "Via del Corso 300, Rome",
    "Calle de Alcala 50, Madrid",
    "Karl Johans gate 22, Oslo",
    "2-8-1 Nishi-Shinjuku, Tokyo",
)
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN", "TSLA", "IBM", "ORCL", "SAP", "INTC", "NFLX")
COINS = ("BTC", "ETH", "SOL", "ADA", "DOT", "XRP")
MONEY = {
    "EUR": "euros",
    "GBP": "British pounds",
    "JPY": "Japanese yen",
    "CHF": "Swiss francs",
    "CAD": "Canadian dollars",
    "AUD": "Australian dollars",
    "INR": "Indian rupees",
    "BRL": "Brazilian reais",
}
COUNTRIES = {"US": "the United States", "GB": "the United Kingdom", "DE": "Germany"}
COUNTRIES.update({"FR": "France", "JP": "Japan", "BR": "Brazil", "ES": "Spain", "IT": "Italy"})
CITIES = ("Vienna", "Seoul", "Lima", "Nairobi", "Montreal", "Krakow", "Dublin", "Hanoi")
LEAGUES = ("Premier League", "La Liga", "Serie A", "Bundesliga", "Ligue 1", "Eredivisie")
MODES = ("driving", "walking", "transit")
FOODS = ("lentils", "salmon", "chickpeas", "mushrooms", "tofu", "chicken", "spinach")
DIETS = ("vegan", "vegetarian", "gluten-free", "keto")
JOBS = ("data engineer", "nurse", "civil engineer", "graphic designer", "accountant", "teacher")
MOVIES = ("The Last Lighthouse", "Glass Harbor", "Midnight in Kestrel", "Paper Moons", "Iron Tide")
FLIGHTS = ("LH400", "BA117", "AF22", "UA901", "QF1", "EK203", "KL641")


@dataclass(frozen=True)
class Task:
    """One task: the ``request``, the ``tools`` shown, the gold ``calls`` (``{"name",
    "arguments", "key"}``; ``key``: the arguments ``calls_match`` compares) and the gold
    ``answer`` values, all of which the final answer must hold."""

    id: str
    request: str
    tools: list[str]
    calls: list[dict[str, Any]]
    answer: list[Any]
    source: str = "generated"
    """``fixture`` or ``generated``."""
    template: str = ""
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def dependent(self) -> bool:
        """Whether a gold call takes an earlier call's result."""
        return any(REF.search(json.dumps(c["arguments"])) for c in self.calls)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "request": self.request,
            "tools": self.tools,
            "calls": self.calls,
            "answer": self.answer,
            "source": self.source,
            "template": self.template,
        }


def run_gold(task: Task, tools: dict[str, Tool] | None = None) -> tuple[list[str], list[dict]]:
    """Execute the gold calls in order, each ``"$N"`` filled with step N's result; the results
    and the calls with their concrete arguments (``{"name", "arguments", "key"}``)."""
    tools = TOOLS if tools is None else tools
    results: list[str] = []
    resolved: list[dict[str, Any]] = []
    for c in task.calls:
        args = fill(c["arguments"], results)
        results.append(tools[c["name"]].run(args))
        resolved.append({"name": c["name"], "arguments": args, "key": list(c["key"])})
    return results, resolved


# --------------------------------------------------------------------------- templates

Template = Callable[[random.Random], tuple[str, list[dict[str, Any]], list[Any]]]


def _money(r: random.Random) -> tuple[str, str]:
    code = r.choice(sorted(MONEY))
    return code, f"{MONEY[code]} ({code})"


def _in_days(days: int) -> str:
    return "tomorrow" if days == 1 else f"{days} days from now"


def _to(amount: float, target: str) -> float:
    return float(convert(amount, "USD", target)["converted"])


def _convert_call(step: int, target: str) -> dict[str, Any]:
    return call("exchange_rate", amount=f"${step}", currency="USD", target=target)


def weather_at_address(r: random.Random) -> Any:
    address, days = r.choice(ADDRESSES), r.randint(1, 5)
    ask = f"What is the forecast high temperature in degrees Celsius at {address} {_in_days(days)}?"
    calls = [call("geocode_address", address=address)]
    calls.append(call("weather_forecast", location="$1", days=days))
    return ask, calls, [forecast(*coords(address), days)["high_c"]]


def two_stock_quotes(r: random.Random) -> Any:
    a, b = r.sample(SYMBOLS, 2)
    ask = f"What are the share prices of {a} and {b} in US dollars?"
    calls = [call("stock_quote", symbol=a), call("stock_quote", symbol=b)]
    return ask, calls, [quote(a), quote(b)]


def stock_in_currency(r: random.Random) -> Any:
    symbol, (code, money) = r.choice(SYMBOLS), _money(r)
    ask = f"How much is one share of {symbol} worth in {money}?"
    calls = [call("stock_quote", symbol=symbol), _convert_call(1, code)]
    return ask, calls, [_to(quote(symbol), code)]


def air_at_address(r: random.Random) -> Any:
    address = r.choice(ADDRESSES)
    ask = f"What is the air quality index (AQI) at {address}?"
    calls = [call("geocode_address", address=address), call("air_quality", location="$1")]
    return ask, calls, [air(*coords(address))["aqi"]]


def weather_two_cities(r: random.Random) -> Any:
    a, b = r.sample(CITIES, 2)
    ask = f"What is the temperature in degrees Celsius right now in {a} and in {b}?"
    calls = [call("current_weather", city=a), call("current_weather", city=b)]
    return ask, calls, [weather_now(a)["temperature_c"], weather_now(b)["temperature_c"]]


def hotel_in_currency(r: random.Random) -> Any:
    airport, (code, money) = r.choice(sorted(AIRPORTS)), _money(r)
    ask = (
        f"What does the cheapest hotel night cost, in {money}, in the city served by the "
        f"airport {airport}?"
    )
    calls = [call("airport_info", code=airport), call("hotel_offers", city="$1")]
    calls.append(_convert_call(2, code))
    return ask, calls, [_to(hotel_price(airport_city(airport)), code)]


def crypto_in_currency(r: random.Random) -> Any:
    coin, (code, money) = r.choice(COINS), _money(r)
    ask = f"How much is one {coin} worth in {money}?"
    return (
        ask,
        [call("crypto_price", symbol=coin), _convert_call(1, code)],
        [_to(crypto(coin), code)],
    )


def flight_and_airport(r: random.Random) -> Any:
    number, airport = r.choice(FLIGHTS), r.choice(sorted(AIRPORTS))
    ask = (
        f"What is the status of flight {number} today, and which city does airport {airport} serve?"
    )
    calls = [call("flight_status", flight_number=number), call("airport_info", code=airport)]
    return ask, calls, [flight(number)["status"], airport_city(airport)]


def concert_weather(r: random.Random) -> Any:
    country = r.choice(sorted(COUNTRIES))
    ask = (
        f"The artist at number one of the music chart of {COUNTRIES[country]} ({country}) "
        "plays a concert next in some city. What is the temperature in degrees Celsius in "
        "that city right now?"
    )
    calls = [call("top_charts", country=country), call("concert_dates", artist="$1")]
    calls.append(call("current_weather", city="$2"))
    return ask, calls, [weather_now(concert_city(chart_top(country)))["temperature_c"]]


def distance_between(r: random.Random) -> Any:
    a, b = r.sample(ADDRESSES, 2)
    mode = r.choice(MODES)
    ask = f"How many kilometres is the {mode} route from {a} to {b}?"
    calls = [call("geocode_address", address=a), call("geocode_address", address=b)]
    calls.append(call("distance_matrix", origin="$1", destination="$2", mode=mode))
    return ask, calls, [distance(coords(a), coords(b), mode)["distance_km"]]


def company_and_quote(r: random.Random) -> Any:
    symbol = r.choice(SYMBOLS)
    ask = f"How many employees does {symbol} have, and what is its share price in US dollars?"
    calls = [call("company_profile", symbol=symbol), call("stock_quote", symbol=symbol)]
    return ask, calls, [company(symbol)["employees"], quote(symbol)]


def league_captain(r: random.Random) -> Any:
    league = r.choice(LEAGUES)
    ask = f"Who is the captain of the team at the top of the {league}?"
    calls = [call("team_standings", league=league), call("team_roster", team="$1")]
    return ask, calls, [roster(league_leader(league))["captain"]]


def flight_in_currency(r: random.Random) -> Any:
    origin, destination = r.sample(sorted(AIRPORTS), 2)
    adults, (code, money) = r.randint(1, 4), _money(r)
    who = "one adult" if adults == 1 else f"{adults} adults"
    ask = f"What does the cheapest flight from {origin} to {destination} for {who} cost in {money}?"
    calls = [call("flight_prices", origin=origin, destination=destination, adults=adults)]
    calls.append(_convert_call(1, code))
    return ask, calls, [_to(flight_price(origin, destination, adults), code)]


def three_cryptos(r: random.Random) -> Any:
    coins = r.sample(COINS, 3)
    ask = f"What are the prices of {coins[0]}, {coins[1]} and {coins[2]} in US dollars?"
    return ask, [call("crypto_price", symbol=c) for c in coins], [crypto(c) for c in coins]


def recipe_calories(r: random.Random) -> Any:
    food, diet = r.choice(FOODS), r.choice(DIETS)
    ask = f"How many calories per serving does the best-rated {diet} recipe with {food} have?"
    calls = [call("recipe_search", query=food, diet=diet), call("nutrition_facts", query="$1")]
    return ask, calls, [nutrition(top_recipe(food, diet))["calories"]]


def concert_forecast(r: random.Random) -> Any:
    country, days = r.choice(sorted(COUNTRIES)), r.randint(1, 5)
    ask = (
        f"The artist at number one of the music chart of {COUNTRIES[country]} ({country}) "
        "plays a concert next in some city. What is the forecast high temperature in degrees "
        f"Celsius in that city {_in_days(days)}?"
    )
    calls = [call("top_charts", country=country), call("concert_dates", artist="$1")]
    calls += [
        call("geocode_address", address="$2"),
        call("weather_forecast", location="$3", days=days),
    ]
    return ask, calls, [forecast(*coords(concert_city(chart_top(country))), days)["high_c"]]


def movie_facts(r: random.Random) -> Any:
    title = r.choice(MOVIES)
    ask = (
        f"Who directed {title}, and what was its worldwide box office gross in millions of "
        "US dollars?"
    )
    calls = [call("movie_details", title=title), call("box_office", title=title)]
    return ask, calls, [movie(title)["director"], gross(title)["gross_usd_m"]]


def salary_in_currency(r: random.Random) -> Any:
    job, city, (code, money) = r.choice(JOBS), r.choice(CITIES), _money(r)
    ask = f"What is the median yearly salary of a {job} in {city}, in {money}?"
    calls = [call("salary_estimate", title=job, location=city), _convert_call(1, code)]
    return ask, calls, [_to(salary(job, city), code)]


def two_stocks_in_currency(r: random.Random) -> Any:
    (a, b), (code, money) = r.sample(SYMBOLS, 2), _money(r)
    ask = f"How much are one share of {a} and one share of {b} worth in {money}?"
    calls = [call("stock_quote", symbol=a), _convert_call(1, code)]
    calls += [call("stock_quote", symbol=b), _convert_call(3, code)]
    return ask, calls, [_to(quote(a), code), _to(quote(b), code)]


def nearby_place(r: random.Random) -> Any:
    address, radius = r.choice(ADDRESSES), r.choice((500, 1000, 2000))
    ask = f"What is the closest place of interest to {address}, within {radius} metres?"
    calls = [call("geocode_address", address=address)]
    calls.append(call("nearby_places", location="$1", radius=radius))
    return ask, calls, [nearby(*coords(address), radius)["closest"]]


TEMPLATES: dict[str, Template] = {
    t.__name__: t
    for t in (
        weather_at_address,
        two_stock_quotes,
        stock_in_currency,
        air_at_address,
        weather_two_cities,
        hotel_in_currency,
        crypto_in_currency,
        flight_and_airport,
        concert_weather,
        distance_between,
        company_and_quote,
        league_captain,
        flight_in_currency,
        three_cryptos,
        recipe_calories,
        concert_forecast,
        movie_facts,
        salary_in_currency,
        two_stocks_in_currency,
        nearby_place,
    )
}
"""The generated tasks' templates, in the order task ``i`` cycles through them."""

SHOWN = (6, 8)
"""Fewest and most tools a generated task shows."""


def generate(n: int = 50, seed: int = 0) -> list[Task]:
    """``n`` tasks over the executable catalog; the same ``n`` and ``seed`` give the same
    tasks, and a smaller ``n`` gives the first of them."""
    if n < 0:
        raise ConfigError(f"the number of tasks must be at least 0, not {n}")
    names = list(TEMPLATES)
    seen: set[str] = set()
    tasks = []
    for i in range(n):
        template = names[i % len(names)]
        for attempt in range(50):
            r = random.Random(f"one-step/{seed}/{i}/{attempt}")
            request, calls, answer = TEMPLATES[template](r)
            if request not in seen:
                break
        seen.add(request)
        tasks.append(
            Task(
                id=f"gen{seed}-{i:02d}",
                request=request,
                tools=tool_set(calls, r),
                calls=calls,
                answer=answer,
                template=template,
            )
        )
    return tasks


def tool_set(calls: Sequence[dict[str, Any]], r: random.Random) -> list[str]:
    """The tools a task shows: the gold calls' tools and distractors from the catalog, 6 to 8
    in all, shuffled."""
    needed = list(dict.fromkeys(c["name"] for c in calls))
    total = max(len(needed) + 2, r.randint(*SHOWN))
    others = sorted(set(CATALOG) - set(needed))
    shown = needed + r.sample(others, total - len(needed))
    r.shuffle(shown)
    return shown


def fixture_tasks() -> list[Task]:
    """The hand-written tasks (:mod:`.fixture`), each showing the fixture's six tools."""
    return [
        Task(
            id=t["id"],
            request=t["request"],
            tools=list(fixture.TOOLS),
            calls=t["calls"],
            answer=t["answer"],
            source="fixture",
        )
        for t in fixture.TASKS
    ]


def all_tasks(generated: int = 50, seed: int = 0, *, fixture_only: bool = False) -> list[Task]:
    """The fixture's tasks, then (unless ``fixture_only``) ``generated`` generated ones."""
    return fixture_tasks() + ([] if fixture_only else generate(generated, seed))
