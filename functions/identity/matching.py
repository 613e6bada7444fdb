"""Probabilistic matching of `identify` traits: normalization, blocking keys, one score.

Pure functions, no AWS and no I/O. The identity step turns an event's traits into
`MatchTraits`, files them under `blocking_keys`, fetches the profiles filed under
the same keys and scores the pair with `score`; the thresholds that decide merge,
suggested link or nothing live in `beacon.yaml` (`identity.probabilistic`). How
the weights and thresholds were chosen, and what they achieve on a labelled
simulated set, is in docs/identity.md ("Probabilistic matching");
`python bench/matching_data.py` reproduces the figures.

Normalization (both sides of every comparison go through the same code):

* names: accents folded (José -> jose, Müller -> muller), lower-case, punctuation
  dropped (O'Brien -> obrien, hyphens split), honorifics (mr, dr, ...) and
  generational suffixes (jr, iii, ...) removed, and every given-name token mapped
  from a nickname or spelling variant to one canonical form (bob -> robert,
  liz -> elizabeth, catherine -> katherine). A `name` trait is split on
  whitespace: the first token is the first name and the rest the last name
  (middle names included; "Smith, John" is understood). Explicit first/last
  name traits win over `name`.
* address: the street line only (the object's `street` plus a second line, or a
  plain string's first comma-separated part plus unit parts), lower-case,
  punctuation removed, abbreviations expanded (st -> street, or saint right
  after the house number; rd -> road, ave -> avenue, n -> north, ...) and every
  unit designator (apt, apartment, suite, ste, flat, #) written `unit`.
* postcode: upper-case, spaces removed; a US ZIP+4 keeps its five-digit ZIP.
  When no postcode trait is given, one at the end of a plain-string address is
  used.
* phone: E.164 through `phonenumbers`, parsed in the address's country when it
  names one, else in the deployment's default region; invalid numbers are None.
* email_local: the part before the last `@`, lower-case, with any `+tag` removed
  and the separators `.`, `_` and `-` removed for every provider, not only
  Gmail: this is a similarity signal, not an identifier (exact emails are
  matched deterministically), and people write `ana.lopez` and `analopez`
  interchangeably. Role accounts (info, admin, sales, ...) are ignored because
  they are shared.

Traits are *usable* for matching with a first and a last name plus at least one
of: a phone, a street address with its postcode, an email local part.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

import phonenumbers
from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler

FIELDS = ("name", "phone", "address", "postcode", "email_local")

# Given-name variants -> one canonical form. Only unambiguous (or conventionally
# accepted) pairs: "pat" could be Patrick or Patricia, so it is not here.
_CANONICAL_NAMES: dict[str, tuple[str, ...]] = {
    "abigail": ("abby", "abbie", "gail"),
    "alexander": ("alex", "alec", "xander", "sasha"),
    "alexandra": ("alexa", "lexi", "lexie"),
    "andrew": ("andy", "drew"),
    "anthony": ("tony", "antony"),
    "barbara": ("barb", "babs"),
    "benjamin": ("ben", "benny", "benji"),
    "charles": ("charlie", "chuck", "chas"),
    "christopher": ("chris", "kit", "topher"),
    "cynthia": ("cindy",),
    "daniel": ("dan", "danny"),
    "david": ("dave", "davey"),
    "deborah": ("debbie", "deb", "debra"),
    "donald": ("don", "donnie"),
    "dorothy": ("dot", "dottie"),
    "douglas": ("doug",),
    "edward": ("ed", "eddie", "ned", "ted"),
    "elizabeth": (
        "liz",
        "lizzie",
        "lizzy",
        "beth",
        "betty",
        "betsy",
        "eliza",
        "libby",
        "elisabeth",
    ),
    "enrique": ("quique",),
    "eugene": ("gene",),
    "francisco": ("paco", "pancho", "curro"),
    "frederick": ("fred", "freddie", "freddy"),
    "gerald": ("jerry",),
    "gregory": ("greg",),
    "guadalupe": ("lupe",),
    "henry": ("harry", "hank"),
    "ignacio": ("nacho",),
    "jacob": ("jake",),
    "james": ("jim", "jimmy", "jamie"),
    "jennifer": ("jen", "jenn", "jenny"),
    "jessica": ("jess", "jessie"),
    "jesus": ("chuy",),
    "john": ("johnny", "jack"),
    "jonathan": ("jon", "jonny"),
    "jose": ("pepe", "chepe"),
    "joseph": ("joe", "joey"),
    "joshua": ("josh",),
    "katherine": (
        "kate",
        "katie",
        "kathy",
        "kat",
        "kathryn",
        "katharine",
        "catherine",
        "cathy",
        "kitty",
    ),
    "kenneth": ("ken", "kenny"),
    "kimberly": ("kim",),
    "lawrence": ("larry", "laurence"),
    "leonard": ("len", "lenny"),
    "manuel": ("manny", "manolo"),
    "margaret": ("maggie", "meg", "peggy", "marge", "margie"),
    "matthew": ("matt", "matty"),
    "michael": ("mike", "mikey", "mick", "mickey"),
    "nathan": ("nate",),
    "nicholas": ("nick", "nicky", "nico"),
    "pamela": ("pam",),
    "patricia": ("patty", "trish", "tricia"),
    "peter": ("pete",),
    "philip": ("phil", "phillip"),
    "raymond": ("ray",),
    "rebecca": ("becky", "becca"),
    "richard": ("rick", "ricky", "rich", "richie", "dick"),
    "robert": ("bob", "bobby", "rob", "robbie", "bert"),
    "samuel": ("sam", "sammy"),
    "sarah": ("sara",),
    "stephanie": ("steph",),
    "steven": ("steve", "stevie"),
    "susan": ("sue", "susie", "suzy"),
    "theodore": ("theo",),
    "thomas": ("tom", "tommy"),
    "timothy": ("tim", "timmy"),
    "victoria": ("vicky", "tori"),
    "walter": ("walt",),
    "william": ("bill", "billy", "will", "willy", "willie", "liam"),
    "zachary": ("zach", "zack"),
}
NICKNAMES: dict[str, str] = {
    variant: canonical for canonical, variants in _CANONICAL_NAMES.items() for variant in variants
}

# Common given names, canonical forms. Two different names from this list are two
# different people however alike they look to Jaro-Winkler (jose / joseph 0.93,
# michael / michelle 0.92, daniel / daniela 0.97): a family often holds both.
_COMMON_GIVEN_TEXT = """
    aaron adam adriana ahmed aiden aisha alan albert alejandro alexander alexandra ali
    alice amanda amber amy ana andrea andres andrew angela ann anna anthony antonio arjun
    arthur ashley austin ava barbara beatriz benjamin betty beverly brandon brenda brian
    brittany bruce bryan carl carlos carmen carol carolyn charles charlotte cheryl chloe
    christian christina christine christopher claudia cynthia daniel daniela danielle david
    deborah denise dennis diana diane diego dmitri donald donna doris dorothy douglas dylan
    edward eduardo elena elijah elizabeth emilio emily emma enrique eric ethan eugene evelyn
    fatima fernando frances francisca francisco frank gabriel gabriela gary george gerald
    giovanni gloria grace gregory guadalupe guillermo hannah hans harold hassan heather
    hector helen henry hiroshi ignacio ines isabel isabella ivan jacob jacqueline james
    janet janice jason javier jean jeffrey jennifer jeremy jerry jesse jessica jesus joan
    john jonathan jordan jorge jose joseph joshua joyce juan juana judith judy julie justin
    karen katherine kathleen kayla keith kelly kenji kenneth kevin kimberly kyle larry lars
    laura lauren lawrence lee linda lisa logan lori louis louise lucas lucia luis madison
    manuel marco margaret maria marie mario mark marta martha mary mason matthew megan
    melissa mercedes mia michael michelle miguel monica nancy natalie nathan nicholas nicole
    noah olivia omar oscar pablo pamela patricia patrick paul paula pedro peter philip pilar
    priya rachel rafael rajesh ramon randy raul ravi raymond rebecca renee ricardo richard
    robert roberto roderick roger ronald rosa roy ruben russell ruth ryan samantha samuel
    sandra sarah scott sean sergio sharon shirley silvia sofia sophia stephanie steven susan
    sven takashi teresa terry theresa thomas timothy tyler veronica victor victoria vincent
    virginia walter wayne wei william yolanda yusuf zachary zoe
"""
_COMMON_GIVEN_NAMES = frozenset(_COMMON_GIVEN_TEXT.split())
_KNOWN_GIVEN = frozenset(NICKNAMES) | frozenset(_CANONICAL_NAMES) | _COMMON_GIVEN_NAMES

_HONORIFICS = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "sr", "sra"})
_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "phd", "md", "esq", "jnr", "snr"})

_STREET_WORDS: dict[str, str] = {
    "str": "street",
    "rd": "road",
    "ave": "avenue",
    "av": "avenue",
    "avn": "avenue",
    "blvd": "boulevard",
    "dr": "drive",
    "drv": "drive",
    "ln": "lane",
    "ct": "court",
    "crt": "court",
    "pl": "place",
    "sq": "square",
    "hwy": "highway",
    "pkwy": "parkway",
    "pky": "parkway",
    "cir": "circle",
    "ter": "terrace",
    "terr": "terrace",
    "trl": "trail",
    "cres": "crescent",
    "gdns": "gardens",
    "gr": "grove",
    "mt": "mount",
    "ft": "fort",
    "expy": "expressway",
    "fwy": "freeway",
    "hts": "heights",
    "pt": "point",
    "tpke": "turnpike",
    "aly": "alley",
    "bldg": "building",
    "rte": "route",
    "n": "north",
    "s": "south",
    "e": "east",
    "w": "west",
    "ne": "northeast",
    "nw": "northwest",
    "se": "southeast",
    "sw": "southwest",
    "apt": "unit",
    "apartment": "unit",
    "ste": "unit",
    "suite": "unit",
    "flat": "unit",
    "fl": "floor",
}
_UNIT_WORDS = ("apt", "apartment", "unit", "ste", "suite", "flat", "#", "fl", "floor", "room")
_ROLE_LOCALS = frozenset(
    {
        "info",
        "admin",
        "sales",
        "contact",
        "hello",
        "office",
        "support",
        "help",
        "mail",
        "email",
        "noreply",
        "team",
        "billing",
        "accounts",
        "webmaster",
        "enquiries",
    }
)
_COUNTRIES: dict[str, str] = {
    "usa": "US",
    "united states": "US",
    "united states of america": "US",
    "uk": "GB",
    "united kingdom": "GB",
    "great britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "canada": "CA",
    "mexico": "MX",
    "méxico": "MX",
    "spain": "ES",
    "españa": "ES",
    "germany": "DE",
    "france": "FR",
    "ireland": "IE",
    "australia": "AU",
}
_FOLD = str.maketrans(
    {"ß": "ss", "æ": "ae", "ø": "o", "œ": "oe", "đ": "d", "ł": "l", "þ": "th", "\u0131": "i"}
)
_APOSTROPHES = re.compile("['`\u2019\u00b4]")
_UK_POSTCODE = re.compile(r"^([A-Z]{1,2}\d[A-Z\d]?)(\d[A-Z]{2})$")
_US_ZIP = re.compile(r"^(\d{5})(\d{4})?$")
_POSTCODE_IN_TEXT = re.compile(
    r"\b(\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2})\s*$", re.IGNORECASE
)
_HOUSE_NUMBER = re.compile(r"^\d+[a-z]?$")


@dataclass(frozen=True)
class MatchTraits:
    """The normalized traits probabilistic matching compares (see the module doc)."""

    first_name: str | None = None
    last_name: str | None = None
    address: str | None = None
    postcode: str | None = None
    phone: str | None = None
    email_local: str | None = None

    def as_dict(self) -> dict[str, str]:
        """For storage: every field that is set, by its name."""
        return {f.name: v for f in fields(self) if isinstance(v := getattr(self, f.name), str)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MatchTraits:
        """The inverse of `as_dict`; other keys and non-string values are ignored."""
        values = {
            f.name: v for f in fields(cls) if isinstance(v := data.get(f.name), str) and v.strip()
        }
        return cls(**values)

    def usable(self) -> bool:
        """A full name plus a phone, an address with its postcode, or an email local part."""
        if not (self.first_name and self.last_name):
            return False
        return bool(self.phone or (self.address and self.postcode) or self.email_local)


@dataclass(frozen=True)
class MatchScore:
    score: float  # 0..1
    fields: dict[str, float]  # per-field similarity that entered the mean


# ---------------------------------------------------------------- normalization


def fold(value: str) -> str:
    """Lower-case with accents and ligatures folded to ASCII letters where possible."""
    text = unicodedata.normalize("NFKD", value.strip().lower().translate(_FOLD))
    return "".join(c for c in text if not unicodedata.combining(c))


def _name_tokens(value: str) -> list[str]:
    text = re.sub(_APOSTROPHES, "", fold(value))
    return [t for t in re.split(r"[^a-z]+", text) if t]


def canonical_first(token: str) -> str:
    """One given-name token in canonical form (bob -> robert)."""
    return NICKNAMES.get(token, token)


def normalize_first_name(value: str) -> str | None:
    tokens = [t for t in _name_tokens(value) if t not in _HONORIFICS]
    return " ".join(canonical_first(t) for t in tokens) or None


def normalize_last_name(value: str) -> str | None:
    tokens = [t for t in _name_tokens(value) if t not in _SUFFIXES]
    return " ".join(tokens) or None


def split_name(value: str) -> tuple[str | None, str | None]:
    """A full `name` as (first, last), normalized: "Ana María López" -> (ana, maria lopez)."""
    parts = [p for p in value.split(",") if set(_name_tokens(p)) - _SUFFIXES]
    if len(parts) == 2:  # "Smith, John" (a bare ", Jr." part was dropped above)
        return normalize_first_name(parts[1]), normalize_last_name(parts[0])
    tokens = _name_tokens(" ".join(parts))
    while tokens and tokens[0] in _HONORIFICS:
        tokens.pop(0)
    while tokens and tokens[-1] in _SUFFIXES:
        tokens.pop()
    if not tokens:
        return None, None
    first = canonical_first(tokens[0])
    return first, (" ".join(tokens[1:]) or None)


def normalize_phone(value: str, default_region: str) -> str | None:
    """E.164 (`+14155552671`), or None when `phonenumbers` finds no valid number."""
    text = str(value).strip()
    if not text or sum(c.isdigit() for c in text) < 6:
        return None
    try:
        number = phonenumbers.parse(text, default_region.upper())
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_address(value: str) -> str | None:
    """A street line in canonical words.

    "12 St Mark's Pl., Apt #4" -> "12 saint marks place unit 4".
    """
    text = fold(value).replace("#", " # ")
    text = re.sub(_APOSTROPHES, "", text)
    raw = [t for t in re.split(r"[^a-z0-9#]+", text) if t]
    out: list[str] = []
    for i, part in enumerate(raw):
        if part == "st":
            # "St" right after the house number (or first) is Saint: "12 St Mark's Pl".
            after_number = i == 0 or _HOUSE_NUMBER.match(raw[i - 1]) is not None
            word = "saint" if after_number and i + 1 < len(raw) else "street"
        elif part == "#":
            word = "unit" if not out or out[-1] != "unit" else ""
        else:
            word = _STREET_WORDS.get(part, part)
        if word == "unit" and out and out[-1] == "unit":
            continue
        if word:
            out.append(word)
    return " ".join(out) or None


def normalize_postcode(value: str) -> str | None:
    """Upper-case without spaces; ZIP+4 -> ZIP. "sw1a 1aa" -> "SW1A1AA", "94103-1234" -> "94103"."""
    text = re.sub(r"[^A-Z0-9]", "", fold(str(value)).upper())
    if not text:
        return None
    us = _US_ZIP.match(text)
    return us.group(1) if us else text


def outward_code(postcode: str) -> str | None:
    """The outward half of a UK postcode (SW1A of SW1A1AA); None for other formats."""
    uk = _UK_POSTCODE.match(postcode)
    return uk.group(1) if uk else None


def normalize_email_local(value: str) -> str | None:
    """`Ana.Lopez+shop@Example.org` -> `analopez`; None for role accounts or no `@`."""
    local, at, domain = str(value).strip().rpartition("@")
    if not at or not local or not domain:
        return None
    local = fold(local).partition("+")[0]
    local = re.sub(r"[._\-\s]", "", local)
    if len(local) < 2 or local in _ROLE_LOCALS:
        return None
    return local


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else None
    if isinstance(value, str) and value.strip():
        return value
    return None


def _first_of(traits: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        text = _text(traits.get(key))
        if text is not None:
            return text
    return None


_POSTCODE_KEYS = ("postalCode", "postal_code", "postcode", "zip", "zipCode", "zip_code")


def _is_unit(part: str) -> bool:
    text = fold(part)
    return text.startswith("#") or text.split(" ")[0].rstrip(".") in _UNIT_WORDS


def _street_from_string(value: str) -> tuple[str, str | None]:
    """(street line, postcode found at the end) from a one-line address."""
    parts = [p.strip() for p in re.split(r"[,\n;]", value) if p.strip()]
    if not parts:
        return "", None
    street = [parts[0]]
    rest = parts[1:]
    if _is_unit(parts[0]) and rest:  # "Flat 2, 10 High St, ..."
        street.append(rest.pop(0))
    while rest and _is_unit(rest[0]):  # "10 High St, Apt 2, ..."
        street.append(rest.pop(0))
    postcode = None
    if rest:
        found = _POSTCODE_IN_TEXT.search(rest[-1]) or (
            _POSTCODE_IN_TEXT.search(rest[-2]) if len(rest) > 1 else None
        )
        postcode = found.group(1) if found else None
    return " ".join(street), postcode


def _region_for(country: str | None, default_region: str) -> str:
    if not country:
        return default_region
    key = fold(country)
    if key in _COUNTRIES:
        return _COUNTRIES[key]
    code = "GB" if key == "uk" else key.upper()
    return code if code in phonenumbers.SUPPORTED_REGIONS else default_region


def match_traits(traits: Mapping[str, Any], default_region: str) -> MatchTraits | None:
    """`MatchTraits` from Segment `identify` traits, or None when they are not `usable`.

    Reads firstName/first_name, lastName/last_name, name, phone, email, address
    (Segment's object with street, city, postalCode, state, country, or a plain
    string) and postalCode/postal_code/postcode/zip.
    """
    first_raw = _first_of(traits, "firstName", "first_name", "firstname", "givenName")
    last_raw = _first_of(traits, "lastName", "last_name", "lastname", "surname", "familyName")
    first = normalize_first_name(first_raw) if first_raw else None
    last = normalize_last_name(last_raw) if last_raw else None
    name = _first_of(traits, "name", "fullName", "full_name")
    if name and not (first and last):
        split_first, split_last = split_name(name)
        first = first or split_first
        last = last or split_last

    street: str | None = None
    postcode_raw: str | None = None
    country: str | None = None
    address = traits.get("address")
    if isinstance(address, Mapping):
        line1 = _first_of(address, "street", "street1", "line1", "address1", "streetAddress")
        line2 = _first_of(address, "street2", "line2", "address2")
        street = " ".join(p for p in (line1, line2) if p) or None
        postcode_raw = _first_of(address, *_POSTCODE_KEYS)
        country = _first_of(address, "country", "countryCode", "country_code")
    elif isinstance(address, str) and address.strip():
        street, postcode_raw = _street_from_string(address)
    postcode_raw = _first_of(traits, *_POSTCODE_KEYS) or postcode_raw
    country = country or _first_of(traits, "country", "countryCode")

    phone_raw = _first_of(traits, "phone", "phoneNumber", "phone_number", "mobile")
    email_raw = _first_of(traits, "email")
    result = MatchTraits(
        first_name=first,
        last_name=last,
        address=normalize_address(street) if street else None,
        postcode=normalize_postcode(postcode_raw) if postcode_raw else None,
        phone=(
            normalize_phone(phone_raw, _region_for(country, default_region)) if phone_raw else None
        ),
        email_local=normalize_email_local(email_raw) if email_raw else None,
    )
    return result if result.usable() else None


# ---------------------------------------------------------------- blocking


_SOUNDEX = str.maketrans(
    "abcdefghijklmnopqrstuvwxyz",
    "01230120022455012623010202",
)


def soundex(word: str) -> str:
    """American Soundex: "robert" -> R163, "rupert" -> R163, "" -> ""."""
    letters = [c for c in fold(word) if "a" <= c <= "z"]
    if not letters:
        return ""
    digits = "".join(letters).translate(_SOUNDEX)
    code = [letters[0].upper()]
    previous = digits[0]
    for letter, digit in zip(letters[1:], digits[1:], strict=True):
        if digit != "0" and digit != previous:
            code.append(digit)
        if letter not in "hw":  # h and w do not separate equal codes; vowels do
            previous = digit
        if len(code) == 4:
            break
    return "".join(code).ljust(4, "0")


def _first_token(value: str | None) -> str:
    return value.split(" ")[0] if value else ""


def primary_surname(last_name: str | None) -> str:
    """The surname token blocking keys use: the first one that is not a known given name.

    "lopez garcia" -> lopez (a second surname is often dropped), "michael smith"
    (a middle name read from `name`) -> smith, "van der berg" -> van.
    """
    tokens = (last_name or "").split(" ")
    while len(tokens) > 1 and tokens[0] in _KNOWN_GIVEN:
        tokens.pop(0)
    return tokens[0]


def blocking_keys(traits: MatchTraits) -> list[str]:
    """Two to four cheap keys under which a true match is filed despite noise.

    * `ph:<last 7 digits>` — survives a different country/area code or format;
    * `em:<email local part>` — the same local part at another provider;
    * `nm:<soundex>:<soundex>` — the phonetic codes of the first given name and
      the primary surname, sorted, so typos that keep the sound, nicknames
      (already canonical) and swapped first/last fields share the key;
    * `pc:<postcode>:<initials>` — the postcode with both initials, sorted
      (again swap-proof), so a typo in a name still meets its household.
    """
    keys: list[str] = []
    if traits.phone:
        keys.append(f"ph:{traits.phone[-7:]}")
    if traits.email_local:
        keys.append(f"em:{traits.email_local}")
    first = canonical_first(_first_token(traits.first_name))
    last = canonical_first(primary_surname(traits.last_name))
    if first and last:
        codes = sorted((soundex(first), soundex(last)))
        keys.append(f"nm:{codes[0]}:{codes[1]}")
        if traits.postcode:
            initials = "".join(sorted((first[0], last[0])))
            keys.append(f"pc:{traits.postcode}:{initials}")
    return keys


# ---------------------------------------------------------------- scoring


def _jw(a: str, b: str) -> float:
    return float(JaroWinkler.similarity(a, b))


FUZZY_NICKNAME = 0.85  # a mistyped nickname of the other's given name ("bohby" / robert)
DISTINCT_NAMES = 0.6  # two different known given names ("jose" / "joseph")


@lru_cache(maxsize=4096)
def _near_canonicals(token: str) -> frozenset[str]:
    """Canonical names of the known given names one typo away from an unknown token."""
    if len(token) < 4 or token in _KNOWN_GIVEN:
        return frozenset()
    return frozenset(
        canonical_first(known)
        for known in _KNOWN_GIVEN
        if abs(len(known) - len(token)) <= 1 and OSA.distance(token, known, score_cutoff=1) <= 1
    )


def _given_similarity(a: str, b: str) -> float:
    """Given names (canonical): Jaro-Winkler; 0.95 when one is the first of the other's
    given names ("ana" / "ana maria"); at most DISTINCT_NAMES for two different known
    names; FUZZY_NICKNAME for a mistyped nickname of the other."""
    best = _jw(a, b)
    ta, tb = a.split(" "), b.split(" ")
    if len(ta) != len(tb) and ta[0] == tb[0]:
        best = max(best, 0.95)
    if ta[0] != tb[0] and ta[0] in _KNOWN_GIVEN and tb[0] in _KNOWN_GIVEN:
        return min(best, DISTINCT_NAMES)
    if best < FUZZY_NICKNAME and (
        tb[0] in _near_canonicals(ta[0]) or ta[0] in _near_canonicals(tb[0])
    ):
        best = FUZZY_NICKNAME
    return best


def _surname_similarity(a: str, b: str) -> float:
    """Surnames: Jaro-Winkler, or 0.95 x the best token pair when either has several tokens
    ("lopez garcia" / "lopez"), so a dropped second surname or middle name still counts."""
    best = _jw(a, b)
    ta, tb = a.split(" "), b.split(" ")
    if len(ta) > 1 or len(tb) > 1:
        tokens = max((_jw(x, y) for x in ta for y in tb if len(x) > 1 and len(y) > 1), default=0.0)
        best = max(best, 0.95 * tokens)
    return best


def _canonical_tokens(value: str) -> str:
    return " ".join(canonical_first(t) for t in value.split(" "))


def name_similarity(a: MatchTraits, b: MatchTraits) -> float | None:
    """Given-name x surname similarity, straight or swapped, whichever is higher.

    Swapped compares each side's first name with the other's last name (a form
    or client that filled the fields the wrong way round). Last names are also
    compared in canonical form, so a nickname typed into the last-name field
    meets its given name.
    """
    if not (a.first_name and a.last_name and b.first_name and b.last_name):
        return None
    a_last, b_last = _canonical_tokens(a.last_name), _canonical_tokens(b.last_name)
    straight = _given_similarity(a.first_name, b.first_name) * max(
        _surname_similarity(a.last_name, b.last_name), _surname_similarity(a_last, b_last)
    )
    swapped = max(
        _given_similarity(a.first_name, b_last) * _surname_similarity(a.last_name, b.first_name),
        _given_similarity(b.first_name, a_last) * _surname_similarity(b.last_name, a.first_name),
    )
    return max(straight, swapped)


def _house_number(address: str) -> str | None:
    """The first number that is not a unit's or floor's: "unit 2 10 high street" -> "10"."""
    previous = ""
    for token in address.split(" "):
        if any(c.isdigit() for c in token) and previous not in ("unit", "floor", "room"):
            return token
        previous = token
    return None


def address_similarity(a: str, b: str) -> float:
    """token_sort_ratio; 0.9 x token_set_ratio when one line omits words of the other
    (a unit); halved when both start with different house numbers."""
    value = max(fuzz.token_sort_ratio(a, b), 0.9 * fuzz.token_set_ratio(a, b)) / 100
    na, nb = _house_number(a), _house_number(b)
    if na and nb and na != nb:
        value *= 0.5
    return value


def postcode_similarity(a: str, b: str) -> float:
    if a == b:
        return 1.0
    outward = outward_code(a)
    return 0.5 if outward is not None and outward == outward_code(b) else 0.0


def phone_similarity(a: str, b: str) -> float:
    if a == b:
        return 1.0
    return 0.8 if a[-7:] == b[-7:] else 0.0


def _name_parts(*traits: MatchTraits) -> list[str]:
    """The pair's name tokens with their nicknames, then every known given name of four
    letters or more, longest first: what an email local part may spell."""
    parts: set[str] = {n for n in _KNOWN_GIVEN if len(n) >= 4}
    for t in traits:
        for token in (t.first_name or "").split(" ") + (t.last_name or "").split(" "):
            if len(token) >= 3:
                canonical = canonical_first(token)
                parts.update((token, canonical))
                parts.update(v for v in _CANONICAL_NAMES.get(canonical, ()) if len(v) >= 3)
    return sorted(parts, key=lambda p: (-len(p), p))


def email_residue(local: str, name_parts: list[str]) -> str:
    """What an email local part says beyond names and initials: `johnsmith1975` -> `1975`,
    `jsmith` or `jmsmith` -> `` (initials are not information), `skywalker77` -> itself."""
    rest = local
    for part in name_parts:
        if part in rest:
            rest = rest.replace(part, " ")
    pieces = [p for p in rest.split(" ") if p and not (p.isalpha() and len(p) <= 2)]
    residue = "".join(pieces)
    return "" if len(residue) <= 1 else residue


def email_comparison(a: MatchTraits, b: MatchTraits) -> tuple[float, bool] | None:
    """(similarity, informative) of two email local parts, or None if either is missing.

    * both carry numbers and they differ (`johnsmith12` / `johnsmith85`): 0,
      informative — two handles;
    * equal: 1, informative when the part is more than the name (`skywalker77`,
      `robert1973`), not when it only spells it (`johnsmith`: two John Smiths
      spell it alike);
    * both carry more than the name: the leftovers compared (numbers equal,
      letters by Jaro-Winkler), informative;
    * otherwise (one or both only spell the name): Jaro-Winkler of the local
      parts, not informative.
    """
    if not (a.email_local and b.email_local):
        return None
    la, lb = a.email_local, b.email_local
    da, db = re.sub(r"\D", "", la), re.sub(r"\D", "", lb)
    if da and db and da != db:
        return 0.0, True
    parts = _name_parts(a, b)
    ra, rb = email_residue(la, parts), email_residue(lb, parts)
    if la == lb:
        return 1.0, bool(ra)
    if ra and rb:
        return _residue_similarity(ra, rb), True
    return _jw(la, lb), False


def _residue_similarity(a: str, b: str) -> float:
    """Numbers must be equal (1977 is not 1973); letters by Jaro-Winkler."""
    if re.sub(r"\D", "", a) != re.sub(r"\D", "", b):
        return 0.0
    la, lb = re.sub(r"\d", "", a), re.sub(r"\d", "", b)
    return 1.0 if la == lb else (_jw(la, lb) if la and lb else 0.5)


# Placed with the recommended thresholds in mind (auto 0.90, review 0.76; see
# docs/identity.md): a pair that shares nothing beyond a name (ceiling 0.70)
# stays below review; a name-shaped email local part or a postcode alone
# (ceiling 0.88) reaches review but never auto-merge; an exact phone, street
# address or email handle keeps a same-name pair in review (floor 0.80) even if
# the person has moved or changed number since.
NAME_FULL = 0.9  # name similarity from which the name no longer limits the score
NAME_SLOPE = 2.0  # ceiling lost per point of name similarity below NAME_FULL
EVIDENCE_FLOOR = 0.7  # ceiling of a pair that shares nothing beyond the name
WEAK_EVIDENCE = 0.6  # what a name-shaped email local part or a postcode vouches
EVIDENCE_SUPPORT = 0.8  # floor per unit of corroboration (an exact phone keeps 0.8)


@dataclass(frozen=True)
class Comparison:
    """Per-field similarities of a pair and how strongly non-name fields corroborate it."""

    sims: dict[str, float]
    evidence: float

    @property
    def ceiling(self) -> float:
        """The highest score the name and the corroboration allow."""
        name = self.sims.get("name", 0.0)
        return min(name_ceiling(name), evidence_ceiling(self.evidence))


def compare(a: MatchTraits, b: MatchTraits) -> Comparison:
    """Similarity in [0, 1] of every field comparable on both sides, and the corroboration.

    Corroboration is the strongest of: phone similarity; address similarity
    (times postcode similarity when both have one); an informative email
    similarity; WEAK_EVIDENCE x a name-shaped email similarity; WEAK_EVIDENCE x
    postcode similarity. A phone, a street address or an email handle point at
    one person; a name-shaped email local part (`johnsmith`) or a postcode
    (thousands of people) do not.
    """
    sims: dict[str, float] = {}
    evidence = 0.0
    name = name_similarity(a, b)
    if name is not None:
        sims["name"] = name
    if a.phone and b.phone:
        sims["phone"] = phone_similarity(a.phone, b.phone)
        evidence = max(evidence, sims["phone"])
    if a.postcode and b.postcode:
        sims["postcode"] = postcode_similarity(a.postcode, b.postcode)
        evidence = max(evidence, WEAK_EVIDENCE * sims["postcode"])
    if a.address and b.address:
        sims["address"] = address_similarity(a.address, b.address)
        evidence = max(evidence, sims["address"] * sims.get("postcode", 1.0))
    email = email_comparison(a, b)
    if email is not None:
        similarity, informative = email
        sims["email_local"] = similarity
        evidence = max(evidence, similarity if informative else WEAK_EVIDENCE * similarity)
    return Comparison(sims, evidence)


def name_ceiling(name: float) -> float:
    """The highest score a pair can reach with this name similarity:
    1 from NAME_FULL up, 0.8 at a name similarity of 0.8, 0.6 at 0.7."""
    return min(1.0, max(0.0, 1.0 - NAME_SLOPE * (NAME_FULL - name)))


def evidence_ceiling(evidence: float) -> float:
    """The highest score a pair can reach with this corroboration:
    EVIDENCE_FLOOR with none, 0.88 with a name-shaped email or a postcode alone,
    1 with an exact phone."""
    return EVIDENCE_FLOOR + (1.0 - EVIDENCE_FLOOR) * evidence


def weighted_mean(sims: Mapping[str, float], weights: Mapping[str, float]) -> float:
    """Mean of the similarities, weighted by `weights` renormalized over the fields present."""
    total = sum(weights.get(f, 0.0) for f in sims)
    if not total:
        return 0.0
    return sum(weights.get(f, 0.0) * s for f, s in sims.items()) / total


def combine(comparison: Comparison, weights: Mapping[str, float]) -> float:
    """The score of a comparison: the weighted mean between the floor and the ceilings."""
    if "name" not in comparison.sims:
        return 0.0
    floor = EVIDENCE_SUPPORT * comparison.evidence
    value = min(max(weighted_mean(comparison.sims, weights), floor), comparison.ceiling)
    return min(1.0, max(0.0, value))


def score(a: MatchTraits, b: MatchTraits, weights: Mapping[str, float]) -> MatchScore:
    """How likely a and b are one person, in [0, 1]; symmetric in a and b.

    With s_f the similarity of field f (below) for the fields F present on both
    sides, w_f the configured weights and E the corroboration (`compare`):

        mean    = sum(w_f * s_f for f in F) / sum(w_f for f in F)
        floor   = 0.8 * E
        ceiling = min(clamp(1 - 2.0 * (0.9 - s_name), 0, 1),   # name ceiling
                      0.7 + 0.3 * E)                           # evidence ceiling
        score   = min(max(mean, floor), ceiling)

        E = max(s_phone, s_address * s_postcode, s_email if informative,
                0.6 * s_email if name-shaped, 0.6 * s_postcode)   (absent -> 0)

    The mean is renormalized: a field missing on either side neither helps nor
    hurts. The ceilings are the penalties that keep a match resting on weak
    evidence out of the thresholds:
    * the name ceiling: a first name that differs caps the score whatever else
      agrees (a family member at the same address and landline, name similarity
      ~0.6, scores at most ~0.4; a name similarity of 0.8 caps at 0.8);
    * the evidence ceiling: a pair that shares only a name caps at 0.70, a name
      plus a postcode or a name-shaped email local part at 0.88 — review, never
      an automatic merge, which needs a phone, a street address or an email
      handle that agrees.
    The floor lets one exact strong identifier outweigh fields that disagree
    because people move and change numbers: same name and same phone is at
    least 0.8 even at a different address.

    Field similarities:
    * name: given-name x surname similarity on canonical forms, straight or
      swapped (first <-> last), whichever is higher (`name_similarity`);
    * phone: 1 for the same E.164 number, 0.8 for the same last seven digits, else 0;
    * address: rapidfuzz token_sort_ratio (0.9 x token_set_ratio when one line
      omits a unit), halved when the house numbers differ;
    * postcode: 1 equal, 0.5 same UK outward code, else 0;
    * email_local: Jaro-Winkler, numbers must agree (`email_comparison`).
    """
    comparison = compare(a, b)
    return MatchScore(combine(comparison, weights), comparison.sims)
