"""The simulated shop's catalogue and its shoppers' first names.

Shared by the journeys over days (`journeys.py`) and the quick visits
(`shoppers.py`); the models are trained on data generated from them.
"""

PRODUCTS = [
    ("sku-100", "Trail Running Shoes", "Shoes", 129.0),
    ("sku-101", "Merino Base Layer", "Apparel", 79.0),
    ("sku-102", "Ultralight Tent", "Camping", 449.0),
    ("sku-103", "Headlamp 400lm", "Accessories", 39.0),
    ("sku-104", "Down Jacket", "Apparel", 289.0),
    ("sku-105", "Trekking Poles", "Accessories", 99.0),
    ("sku-106", "Water Filter", "Camping", 59.0),
]
FIRST_NAMES = ["Ana", "Ben", "Chloé", "Dev", "Eva", "Femi", "Gus", "Hana", "Ivo", "Jun"]
Product = tuple[str, str, str, float]  # sku, name, category, price
CATEGORIES = sorted({category for _, _, category, _ in PRODUCTS})
