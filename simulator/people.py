"""Simulated people, and their `identify` traits as clients send them, with noise.

Households in US and UK cities, Zipf-distributed common names, nicknames,
accented names, compound surnames, mobiles and household landlines, email
addresses; each person rendered as the Segment `identify` traits a client would
send, with realistic noise: typos of one or two characters, nicknames (some the
matcher does not know), dropped accents, case, swapped first/last fields, `name`
strings instead of split fields, phone formats, missing fields, address
abbreviations and typos, email variants, and the odd move or new phone number.
Seeded: every function takes the caller's `random.Random`.

`matching_pairs.py` pairs them up for probabilistic matching's quality gate and
benchmark; `bench/identity.py` sends them through the identity step.
"""

from __future__ import annotations

import random
import re
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Any

from functions.identity.normalization import MatchTraits, match_traits, normalize_phone

DEFAULT_REGION = "US"

# ---------------------------------------------------------------- vocabulary

# (formal name, nicknames people use). A few nicknames here are deliberately not
# in the matcher's table (beto, memo, lalo, trisha, kathie, rory ...): real data
# has variants nobody listed.
GIVEN_NAMES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Robert", ("Bob", "Bobby", "Rob", "Robbie")),
    ("William", ("Bill", "Billy", "Will", "Liam")),
    ("Elizabeth", ("Liz", "Beth", "Betty", "Lizzie", "Eliza")),
    ("Katherine", ("Kate", "Katie", "Kathy", "Kathie")),
    ("Alexander", ("Alex", "Xander")),
    ("James", ("Jim", "Jimmy", "Jamie")),
    ("Michael", ("Mike", "Mikey")),
    ("John", ("Johnny", "Jack")),
    ("David", ("Dave",)),
    ("Daniel", ("Dan", "Danny")),
    ("Thomas", ("Tom", "Tommy")),
    ("Joseph", ("Joe", "Joey")),
    ("Christopher", ("Chris",)),
    ("Matthew", ("Matt",)),
    ("Jennifer", ("Jen", "Jenny")),
    ("Margaret", ("Maggie", "Peggy", "Meg")),
    ("Richard", ("Rick", "Rich", "Richie")),
    ("Patricia", ("Patty", "Trisha")),
    ("Susan", ("Sue", "Susie")),
    ("Edward", ("Ed", "Eddie", "Ted")),
    ("Anthony", ("Tony",)),
    ("Andrew", ("Andy", "Drew")),
    ("Samuel", ("Sam",)),
    ("Rebecca", ("Becky",)),
    ("Nicholas", ("Nick",)),
    ("Benjamin", ("Ben",)),
    ("Jessica", ("Jess",)),
    ("Timothy", ("Tim",)),
    ("Stephanie", ("Steph",)),
    ("Roderick", ("Rory", "Rod")),
    ("José", ("Pepe", "Jose")),
    ("Francisco", ("Paco", "Pancho")),
    ("Roberto", ("Beto",)),
    ("Guillermo", ("Memo",)),
    ("Eduardo", ("Lalo",)),
    ("María", ()),
    ("Sofía", ()),
    ("Andrés", ()),
    ("Ramón", ()),
    ("Inés", ()),
    ("Lucía", ()),
    ("Zoë", ()),
    ("Renée", ()),
    ("Chloé", ()),
    ("Jürgen", ()),
    ("Emily", ()),
    ("Olivia", ()),
    ("Emma", ()),
    ("Ava", ()),
    ("Mia", ()),
    ("Noah", ()),
    ("Ethan", ()),
    ("Aiden", ()),
    ("Priya", ()),
    ("Wei", ()),
    ("Hiroshi", ()),
    ("Fatima", ()),
    ("Mohammed", ()),
    ("Aisha", ()),
    ("Omar", ()),
    ("Lucas", ()),
    ("Grace", ()),
    ("Hannah", ()),
    ("Laura", ()),
    ("Daniela", ()),
    ("Mario", ()),
    ("Michelle", ()),
    ("Alexandra", ("Alexa", "Lexi")),
    ("Francisca", ("Paquita",)),
    ("Louise", ()),
    ("Louis", ()),
    ("Joan", ()),
    ("Sean", ()),
    ("Sarah", ()),
    ("Anna", ()),
    ("Ann", ()),
)
LAST_NAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "García", "Miller", "Davis",
    "Rodríguez", "Martínez", "Hernández", "López", "González", "Wilson", "Anderson",
    "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Pérez", "Thompson",
    "White", "Harris", "Sánchez", "Clark", "Ramírez", "Lewis", "Robinson", "Walker",
    "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores",
    "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell",
    "Carter", "Roberts", "O'Brien", "Müller", "Patel", "Kim", "Chen", "Singh",
    "MacDonald", "Schmidt", "Novak", "Kowalski", "Rossi", "Dubois", "Jensen",
    "Fischer", "Nakamura", "O'Connor", "Fitzgerald", "Okafor", "Haddad", "Ivanova",
    "Van der Berg", "St. Clair", "Peña", "Núñez", "Ibáñez", "Castillo", "Morales",
    "Ortiz", "Gutiérrez", "Chavez", "Ramos", "Ruiz", "Alvarez", "Mendoza",
)  # fmt: skip
HISPANIC = frozenset(
    {
        "García", "Rodríguez", "Martínez", "Hernández", "López", "González", "Pérez",
        "Sánchez", "Ramírez", "Torres", "Flores", "Rivera", "Peña", "Núñez", "Ibáñez",
        "Castillo", "Morales", "Ortiz", "Gutiérrez", "Chavez", "Ramos", "Ruiz", "Alvarez",
        "Mendoza",
    }
)  # fmt: skip
MIDDLE_NAMES = ("Ann", "Marie", "Lee", "James", "Michael", "Luis", "Elena", "Grace", "Paul")
STREETS = (
    "Oak", "Maple", "Main", "Cedar", "Pine", "Elm", "Washington", "Lake", "Hill", "Park",
    "Sunset", "Highland", "Church", "Mill", "River", "Spring", "Willow", "Chestnut",
    "Franklin", "Lincoln", "Jefferson", "Madison", "Cherry", "Walnut", "Ridge", "Valley",
    "Meadow", "Forest", "Harbor", "Orchard", "St Mark's", "Mount Pleasant", "Station",
    "Victoria", "Albert", "Queen's",
)  # fmt: skip
# canonical type, then how people write it
STREET_TYPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Street", ("Street", "St", "St.", "Str")),
    ("Avenue", ("Avenue", "Ave", "Ave.", "Av")),
    ("Road", ("Road", "Rd", "Rd.")),
    ("Drive", ("Drive", "Dr", "Dr.")),
    ("Lane", ("Lane", "Ln")),
    ("Court", ("Court", "Ct")),
    ("Place", ("Place", "Pl")),
    ("Boulevard", ("Boulevard", "Blvd")),
    ("Terrace", ("Terrace", "Ter")),
    ("Way", ("Way",)),
)
DIRECTIONS = (("North", ("North", "N", "N.")), ("West", ("West", "W", "W.")))
UNIT_FORMS = ("Apt {u}", "Apt. {u}", "#{u}", "Apartment {u}", "Unit {u}", "Suite {u}")
UK_UNIT_FORMS = ("Flat {u}", "Flat {u}", "Apartment {u}")


@dataclass(frozen=True)
class City:
    name: str
    state: str
    country: str  # ISO code
    postcodes: tuple[str, ...]
    area_codes: tuple[str, ...]  # US area codes; UK: landline prefixes after +44


US_CITIES = (
    City("San Francisco", "CA", "US", ("94103", "94110", "94114", "94117", "94122"), ("415",)),
    City("Los Angeles", "CA", "US", ("90012", "90026", "90034", "90042"), ("213", "310")),
    City("Chicago", "IL", "US", ("60601", "60614", "60622", "60647"), ("312", "773")),
    City("New York", "NY", "US", ("10001", "10003", "10011", "10025"), ("212", "646")),
    City("Houston", "TX", "US", ("77002", "77006", "77019", "77027"), ("713", "832")),
    City("Phoenix", "AZ", "US", ("85003", "85004", "85016"), ("602",)),
    City("Miami", "FL", "US", ("33125", "33130", "33133"), ("305", "786")),
    City("Seattle", "WA", "US", ("98101", "98103", "98115"), ("206",)),
    City("Denver", "CO", "US", ("80202", "80205", "80218"), ("303", "720")),
    City("Boston", "MA", "US", ("02108", "02116", "02130"), ("617",)),
    City("Atlanta", "GA", "US", ("30303", "30307", "30318"), ("404", "678")),
    City("Austin", "TX", "US", ("78701", "78704", "78745"), ("512",)),
    City("San Antonio", "TX", "US", ("78205", "78209", "78228"), ("210",)),
    City("Springfield", "IL", "US", ("62701", "62704"), ("217",)),
)
UK_CITIES = (
    City("London", "", "GB", ("SW1A 1AA", "E1 6AN", "N1 9GU", "NW3 2QG", "SE15 4QN"), ("20",)),
    City("Manchester", "", "GB", ("M1 1AE", "M14 5RQ", "M20 2LS"), ("161",)),
    City("Leeds", "", "GB", ("LS1 4AP", "LS6 3HN"), ("113",)),
    City("Bristol", "", "GB", ("BS1 5TR", "BS8 1TH"), ("117",)),
)
FREE_MAIL = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "hotmail.com", "aol.com")
KEYBOARD = {
    "a": "qwsz", "b": "vghn", "c": "xdfv", "d": "serfcx", "e": "wsdr", "f": "drtgvc",
    "g": "ftyhbv", "h": "gyujnb", "i": "ujko", "j": "huikmn", "k": "jiolm", "l": "kop",
    "m": "njk", "n": "bhjm", "o": "iklp", "p": "ol", "q": "wa", "r": "edft", "s": "awedxz",
    "t": "rfgy", "u": "yhji", "v": "cfgb", "w": "qase", "x": "zsdc", "y": "tghu", "z": "asx",
}  # fmt: skip

# ---------------------------------------------------------------- people


@dataclass
class Household:
    number: str
    direction: int  # index into DIRECTIONS, or -1
    street: str
    street_type: int  # index into STREET_TYPES
    unit: str | None
    city: City
    postcode: str
    landline: str | None


@dataclass
class Person:
    first: int  # index into GIVEN_NAMES
    middle: str | None
    last: str
    second_last: str | None  # a second (Hispanic) surname
    household: Household
    mobile: str  # E.164
    prefers_landline: bool  # gives the household landline rather than the mobile
    email_local: str
    email_domain: str
    # how likely each rendering is to carry the field: one person tends to fill
    # in the same forms, so presence is correlated across their records
    shares: dict[str, float] = field(default_factory=dict)
    family_email: str | None = None


def _zipf_index(rng: random.Random, n: int, s: float = 0.9) -> int:
    weights = [1.0 / (i + 1) ** s for i in range(n)]
    return rng.choices(range(n), weights=weights)[0]


def ascii_fold(text: str) -> str:
    return "".join(
        c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
    ).replace("'", "")


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def _us_number(rng: random.Random, area: str) -> str:
    return f"+1{area}{rng.randint(2, 9)}{_digits(rng, 2)}{_digits(rng, 4)}"


def _uk_number(rng: random.Random, area: str | None) -> str:
    if area is None:  # mobile
        return f"+447{rng.choice('4579')}{_digits(rng, 8)}"
    if area == "20":
        return f"+4420{rng.choice('378')}{_digits(rng, 7)}"
    return f"+44{area}{rng.randint(2, 9)}{_digits(rng, 6)}"


def _phone(rng: random.Random, city: City, landline: bool) -> str:
    for _ in range(50):
        if city.country == "US":
            number = _us_number(rng, rng.choice(city.area_codes))
        else:
            number = _uk_number(rng, rng.choice(city.area_codes) if landline else None)
        if normalize_phone(number, city.country) == number:
            return number
    raise RuntimeError("no valid phone number generated")  # pragma: no cover


def make_household(rng: random.Random, city: City | None = None) -> Household:
    city = city or (rng.choice(UK_CITIES) if rng.random() < 0.2 else rng.choice(US_CITIES))
    us = city.country == "US"
    has_unit = rng.random() < 0.3
    return Household(
        number=str(rng.randint(1, 2999) if us else rng.randint(1, 220)),
        direction=rng.randrange(len(DIRECTIONS)) if us and rng.random() < 0.15 else -1,
        street=rng.choice(STREETS),
        street_type=rng.randrange(len(STREET_TYPES)),
        unit=(str(rng.randint(1, 40)) + (rng.choice("AB") if rng.random() < 0.3 else ""))
        if has_unit
        else None,
        city=city,
        postcode=rng.choice(city.postcodes),
        landline=_phone(rng, city, landline=True) if rng.random() < 0.3 else None,
    )


def make_email_local(rng: random.Random, first: str, last: str) -> str:
    f, ln = ascii_fold(first).lower(), ascii_fold(last).lower().replace(" ", "")
    patterns = (
        f"{f}.{ln}",
        f"{f}{ln}",
        f"{f[0]}{ln}",
        f"{f}_{ln}",
        f"{f}.{ln}{rng.randint(1, 99)}",
        f"{f}{ln[0]}",
        f"{f}{rng.randint(1960, 2005)}",
        f"{ln}.{f}",
    )
    return rng.choice(patterns)


def make_person(rng: random.Random, household: Household, last: str | None = None) -> Person:
    first = _zipf_index(rng, len(GIVEN_NAMES), 0.7)
    surname = last or LAST_NAMES[_zipf_index(rng, len(LAST_NAMES))]
    second = rng.choice(sorted(HISPANIC)) if surname in HISPANIC and rng.random() < 0.3 else None
    return Person(
        first=first,
        middle=rng.choice(MIDDLE_NAMES) if rng.random() < 0.2 else None,
        last=surname,
        second_last=second,
        household=household,
        mobile=_phone(rng, household.city, landline=False),
        prefers_landline=household.landline is not None and rng.random() < 0.3,
        email_local=make_email_local(rng, GIVEN_NAMES[first][0], surname),
        email_domain=rng.choice(FREE_MAIL) if rng.random() < 0.8 else "acme-corp.com",
        shares={
            "phone": 0.85 if rng.random() < 0.7 else 0.1,
            "email": 0.9 if rng.random() < 0.8 else 0.15,
            "address": 0.85 if rng.random() < 0.65 else 0.1,
        },
    )


# ---------------------------------------------------------------- noise


def _typo(rng: random.Random, text: str, edits: int = 1) -> str:
    for _ in range(edits):
        letters = [i for i, c in enumerate(text) if c.isalpha()]
        if len(letters) < 4:
            return text
        i = rng.choice(letters[1:]) if rng.random() < 0.85 else letters[0]
        kind = rng.random()
        c = text[i]
        if kind < 0.35:  # neighbouring key
            near = KEYBOARD.get(c.lower(), "e")
            repl = rng.choice(near)
            text = text[:i] + (repl.upper() if c.isupper() else repl) + text[i + 1 :]
        elif kind < 0.6:  # dropped letter
            text = text[:i] + text[i + 1 :]
        elif kind < 0.8:  # doubled letter
            text = text[:i] + c + text[i:]
        elif i + 1 < len(text) and text[i + 1].isalpha():  # transposition
            text = text[:i] + text[i + 1] + c + text[i + 2 :]
    return text


def _case(rng: random.Random, text: str) -> str:
    roll = rng.random()
    if roll < 0.08:
        return text.upper()
    if roll < 0.16:
        return text.lower()
    return text


def _maybe_ascii(rng: random.Random, text: str) -> str:
    return ascii_fold(text) if rng.random() < 0.5 else text


def _name_noise(rng: random.Random, text: str) -> str:
    roll = rng.random()
    if roll < 0.05:
        text = _typo(rng, text, 1)
    elif roll < 0.06:
        text = _typo(rng, text, 2)
    return _case(rng, _maybe_ascii(rng, text))


def _render_phone(rng: random.Random, e164: str, with_country: bool) -> str:
    if e164.startswith("+1"):
        d = e164[2:]
        forms = (
            f"({d[:3]}) {d[3:6]}-{d[6:]}",
            f"{d[:3]}-{d[3:6]}-{d[6:]}",
            f"{d[:3]}.{d[3:6]}.{d[6:]}",
            f"+1 {d[:3]} {d[3:6]} {d[6:]}",
            f"1{d}",
            e164,
            f"{d[:3]} {d[3:6]} {d[6:]}",
            f"+1 ({d[:3]}) {d[3:6]}-{d[6:]}",
        )
        return rng.choice(forms)
    national = e164[3:]
    split = 2 if national.startswith("20") else 4
    forms_uk = [f"+44 {national[:split]} {national[split:]}", e164, f"+44 (0){national}"]
    if with_country:
        forms_uk.append(f"0{national[:split]} {national[split:]}")
    return rng.choice(forms_uk)


def _render_email(rng: random.Random, person: Person) -> str:
    local = person.email_local
    roll = rng.random()
    if person.family_email and roll < 0.5:
        local = person.family_email
    elif roll < 0.12:  # another address of theirs: work vs personal
        first, _ = GIVEN_NAMES[person.first]
        local = make_email_local(rng, first, person.last)
    elif roll < 0.22:
        local = re.sub(r"[._]", rng.choice(["", ".", "_"]), local)
    elif roll < 0.27:
        local = _typo(rng, local)
    if rng.random() < 0.1:
        local += f"+{rng.choice(['shop', 'news', 'promo', 'x'])}"
    domain = person.email_domain if rng.random() < 0.7 else rng.choice(FREE_MAIL)
    email = f"{local}@{domain}"
    return email.title() if rng.random() < 0.05 else email


def _render_street(rng: random.Random, h: Household) -> str:
    parts = [h.number]
    if h.direction >= 0:
        parts.append(rng.choice(DIRECTIONS[h.direction][1]))
    street = h.street if rng.random() < 0.9 else _typo(rng, h.street)
    parts.append(street)
    parts.append(rng.choice(STREET_TYPES[h.street_type][1]))
    line = " ".join(parts)
    if h.unit and rng.random() < 0.8:
        forms = UNIT_FORMS if h.city.country == "US" else UK_UNIT_FORMS
        unit = rng.choice(forms).format(u=h.unit)
        if h.city.country == "GB":
            line = f"{unit}, {line}"
        else:
            line = f"{line}{rng.choice([' ', ', '])}{unit}"
    return _case(rng, line)


def _render_postcode(rng: random.Random, h: Household) -> str:
    if h.city.country == "US":
        return h.postcode + (f"-{_digits(rng, 4)}" if rng.random() < 0.1 else "")
    code = h.postcode
    roll = rng.random()
    return code.replace(" ", "") if roll < 0.2 else (code.lower() if roll < 0.3 else code)


def _render_name(rng: random.Random, person: Person, traits: dict[str, Any]) -> None:
    formal, nicknames = GIVEN_NAMES[person.first]
    first = rng.choice(nicknames) if nicknames and rng.random() < 0.35 else formal
    first = _name_noise(rng, first)
    last = person.last
    if person.second_last and rng.random() < 0.5:
        last = f"{last} {person.second_last}"
    last = _name_noise(rng, last)
    roll = rng.random()
    if roll < 0.3:
        middle = f" {person.middle}" if person.middle and rng.random() < 0.5 else ""
        traits["name"] = f"{last}, {first}" if rng.random() < 0.05 else f"{first}{middle} {last}"
        return
    if rng.random() < 0.06:  # fields swapped by the form or the client
        first, last = last, first
    if roll < 0.8:
        traits["firstName"], traits["lastName"] = first, last
    else:
        traits["first_name"], traits["last_name"] = first, last


def render(rng: random.Random, person: Person) -> dict[str, Any]:
    """The `identify` traits a client would send for this person, with noise."""
    traits: dict[str, Any] = {}
    _render_name(rng, person, traits)
    h = person.household
    address_as_object = False
    if rng.random() < person.shares["address"]:
        street = _render_street(rng, h)
        postcode = _render_postcode(rng, h)
        if rng.random() < 0.6:
            address_as_object = True
            address: dict[str, Any] = {"street": street, "city": h.city.name}
            if rng.random() < 0.9:
                address["postalCode"] = postcode
            if h.city.state:
                address["state"] = h.city.state
            if rng.random() < 0.6:
                address["country"] = rng.choice(
                    [h.city.country, "United States" if h.city.country == "US" else "UK"]
                )
            traits["address"] = address
        else:
            state = f" {h.city.state}" if h.city.state else ""
            traits["address"] = f"{street}, {h.city.name},{state} {postcode}"
    elif rng.random() < 0.3:
        traits[rng.choice(["postalCode", "zip", "postal_code"])] = _render_postcode(rng, h)
    if rng.random() < person.shares["phone"]:
        landline = person.prefers_landline != (rng.random() < 0.04)  # now and then the other
        number = h.landline if h.landline and landline else person.mobile
        has_country = address_as_object and "country" in traits["address"]
        traits["phone"] = _render_phone(rng, number, has_country)
    if rng.random() < person.shares["email"]:
        traits["email"] = _render_email(rng, person)
    return traits


def usable_rendering(rng: random.Random, person: Person) -> tuple[dict[str, Any], MatchTraits]:
    for _ in range(100):
        traits = render(rng, person)
        matched = match_traits(traits, DEFAULT_REGION)
        if matched is not None:
            return traits, matched
    raise RuntimeError("could not render usable traits")  # pragma: no cover


def moved(rng: random.Random, person: Person) -> Person:
    same_city = rng.random() < 0.5
    new_home = make_household(rng, person.household.city if same_city else None)
    return replace(person, household=new_home)


def new_phone(rng: random.Random, person: Person) -> Person:
    mobile = _phone(rng, person.household.city, landline=False)
    return replace(person, mobile=mobile)


def different_first(rng: random.Random, person: Person) -> int:
    canonical = ascii_fold(GIVEN_NAMES[person.first][0]).lower()
    while True:
        other = _zipf_index(rng, len(GIVEN_NAMES), 0.7)
        if ascii_fold(GIVEN_NAMES[other][0]).lower() != canonical:
            return other
