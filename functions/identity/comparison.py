"""Probabilistic matching, step two: blocking keys and one score for a pair of
normalized traits (`normalization.MatchTraits`).

Pure functions, no AWS and no I/O. The identity step files each person's traits
under `blocking_keys`, fetches the profiles filed under the same keys and scores
the pair with `score`; the thresholds that decide merge, suggested link or
nothing live in `beacon.yaml` (`identity.probabilistic`). How the weights and
thresholds were chosen, and what they achieve on a labelled simulated set, is in
docs/identity.md ("Probabilistic matching"); `python bench/matching_data.py`
reproduces the figures.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz
from rapidfuzz.distance import OSA, JaroWinkler

from functions.identity.normalization import MatchTraits, canonical_first, fold, outward_code
from functions.identity.word_lists import CANONICAL_NAMES, KNOWN_GIVEN

FIELDS = ("name", "phone", "address", "postcode", "email_local")


@dataclass(frozen=True)
class MatchScore:
    score: float  # 0..1
    fields: dict[str, float]  # per-field similarity that entered the mean


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
    while len(tokens) > 1 and tokens[0] in KNOWN_GIVEN:
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
    if len(token) < 4 or token in KNOWN_GIVEN:
        return frozenset()
    return frozenset(
        canonical_first(known)
        for known in KNOWN_GIVEN
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
    if ta[0] != tb[0] and ta[0] in KNOWN_GIVEN and tb[0] in KNOWN_GIVEN:
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
    parts: set[str] = {n for n in KNOWN_GIVEN if len(n) >= 4}
    for t in traits:
        for token in (t.first_name or "").split(" ") + (t.last_name or "").split(" "):
            if len(token) >= 3:
                canonical = canonical_first(token)
                parts.update((token, canonical))
                parts.update(v for v in CANONICAL_NAMES.get(canonical, ()) if len(v) >= 3)
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
