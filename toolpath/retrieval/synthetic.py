"""Synthetic API catalogs: many realistic-looking, described-only tools for retrieval tests
and benchmarks (TPTU-v2 works with catalogs of 16k+ APIs)."""

from __future__ import annotations

import random
from collections.abc import Callable

from toolpath.tools.base import Tool
from toolpath.tools.catalog import described_only
from toolpath.tools.catalog.formats import gc_paused

_DOMAIN_TABLE = """
weather|weather_forecast current_weather air_quality uv_index weather_alerts sunrise_times|city:string:City name, e.g. 'Paris';days:integer:Days ahead, 1-14;units:string:'metric' or 'imperial';lat:number:Latitude in degrees;lon:number:Longitude in degrees
finance|stock_quote exchange_rate company_profile market_news crypto_price earnings_calendar|symbol:string:Ticker symbol, e.g. 'AAPL';currency:string:ISO 4217 currency code;date:string:Date as YYYY-MM-DD;limit:integer:Most results to return;exchange:string:Exchange code, e.g. 'NASDAQ'
sports|match_scores team_standings player_stats league_fixtures team_roster live_odds|team:string:Team name;league:string:League, e.g. 'Premier League';season:integer:Season start year;player:string:Player name;date:string:Match date as YYYY-MM-DD
movies|movie_details movie_showtimes cast_list box_office movie_reviews tv_episodes|title:string:Movie or show title;year:integer:Release year;genre:string:Genre, e.g. 'comedy';city:string:City for showtimes;language:string:Language code, e.g. 'en'
maps|driving_directions geocode_address nearby_places distance_matrix place_details traffic_info|origin:string:Start address or 'lat,lon';destination:string:End address;address:string:Street address;radius:integer:Search radius in meters;mode:string:'driving', 'walking' or 'transit'
music|song_lyrics artist_info top_charts album_tracks playlist_songs concert_dates|artist:string:Artist name;song:string:Song title;country:string:Country code, e.g. 'US';limit:integer:Most results to return
travel|flight_prices hotel_offers airport_info visa_requirements car_rentals flight_status|origin:string:IATA code of the departure airport;destination:string:IATA code of the arrival airport;date:string:Travel date as YYYY-MM-DD;adults:integer:Number of adult travellers;flight_number:string:Flight number, e.g. 'LH400'
food|recipe_search nutrition_facts restaurant_menu wine_pairing meal_plan grocery_prices|query:string:Dish or ingredient;diet:string:Diet, e.g. 'vegan';calories:integer:Most calories per serving;city:string:City of the restaurant
news|top_headlines news_articles trending_topics article_summary press_releases fact_checks|topic:string:Topic or keyword;country:string:Country code, e.g. 'GB';from_date:string:Earliest date as YYYY-MM-DD;page:integer:Result page, from 1
shopping|product_search price_history product_reviews coupon_codes order_status store_locator|query:string:Product name or keyword;max_price:number:Highest price;category:string:Product category;order_id:string:Order identifier
jobs|job_listings salary_estimate company_reviews skill_trends remote_jobs internships|title:string:Job title;location:string:City or 'remote';experience:integer:Years of experience;page:integer:Result page, from 1
health|drug_interactions symptom_checker hospital_finder vaccine_schedule bmi_calculator clinical_trials|drug:string:Drug name;symptoms:string:Comma-separated symptoms;age:integer:Age in years;zip_code:string:Postal code
language|text_translation word_definition synonyms language_detection spell_check text_sentiment|text:string:Input text;target:string:Target language code;source:string:Source language code;word:string:A single word
"""
_DOMAINS = {
    domain: (tuple(nouns.split()), tuple(tuple(p.split(":", 2)) for p in params.split(";")))
    for domain, nouns, params in (line.split("|") for line in _DOMAIN_TABLE.strip().splitlines())
}
_VERBS = dict(get="Returns", search="Searches", fetch="Fetches", find="Finds", list="Lists")
_VERBS["lookup"] = "Looks up"
_VERB_KEYS, _DOMAIN_KEYS = tuple(_VERBS), tuple(_DOMAINS)
_PROVIDERS = ("OpenData", "Acme", "GlobalData", "QuickAPI", "DataHub", "Nimbus", "Atlas")
_SCOPES = ("worldwide", "for a given location", "in real time", "with history", "by keyword")
_EXTRAS: tuple[str, ...] = (
    "",
    "Results are paginated.",
    "Data is updated every 15 minutes.",
    "Returns JSON.",
)
_EXTRAS += ("Covers 190 countries.", "Free tier: 100 requests a day.", "Cached for an hour.")


def synthetic_catalog(n: int, seed: int | str = 0) -> list[Tool]:
    """``n`` realistic-looking described-only API tools across many domains, for retrieval tests.

    Names look like ``get_weather_forecast_123`` (unique: the number is the tool's index); the
    same ``n`` and ``seed`` always give the same tools.
    """
    r = random.Random(seed).random
    out: list[Tool] = []
    with gc_paused():
        for i in range(n):
            out.append(_synthetic_tool(i, r))
    return out


def _synthetic_tool(i: int, r: Callable[[], float]) -> Tool:
    domain = _DOMAIN_KEYS[int(r() * len(_DOMAIN_KEYS))]
    nouns, params = _DOMAINS[domain]
    noun = nouns[int(r() * len(nouns))]
    verb = _VERB_KEYS[int(r() * len(_VERB_KEYS))]
    name = f"{verb}_{noun}_{i}"
    description = (
        f"{_VERBS[verb]} {noun.replace('_', ' ')} {_SCOPES[int(r() * len(_SCOPES))]} from the "
        f"{_PROVIDERS[int(r() * len(_PROVIDERS))]} {domain} API. {_EXTRAS[int(r() * len(_EXTRAS))]}"
    ).strip()
    start, count = int(r() * len(params)), 1 + int(r() * 3)
    chosen = [params[(start + k) % len(params)] for k in range(count)]
    props = {p: {"type": t, "description": d} for p, t, d in chosen}
    schema = {"type": "object", "properties": props, "required": [chosen[0][0]]}
    return Tool(name, description, schema, described_only(name))
