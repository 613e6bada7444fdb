"""The word lists matching normalizes with: given names and their variants, common
given names, honorifics and suffixes, street words, role accounts, country names.

Data only, no logic (`normalization.py` and `comparison.py` use it). Edit here to
teach matching a nickname or an abbreviation; docs/identity.md says what each
list is for.
"""

# Given-name variants -> one canonical form. Only unambiguous (or conventionally
# accepted) pairs: "pat" could be Patrick or Patricia, so it is not here.
CANONICAL_NAMES: dict[str, tuple[str, ...]] = {
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
    variant: canonical for canonical, variants in CANONICAL_NAMES.items() for variant in variants
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
COMMON_GIVEN_NAMES = frozenset(_COMMON_GIVEN_TEXT.split())
KNOWN_GIVEN = frozenset(NICKNAMES) | frozenset(CANONICAL_NAMES) | COMMON_GIVEN_NAMES

HONORIFICS = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "sr", "sra"})
SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "phd", "md", "esq", "jnr", "snr"})

STREET_WORDS: dict[str, str] = {
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
UNIT_WORDS = ("apt", "apartment", "unit", "ste", "suite", "flat", "#", "fl", "floor", "room")
ROLE_LOCALS = frozenset(
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
COUNTRIES: dict[str, str] = {
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
