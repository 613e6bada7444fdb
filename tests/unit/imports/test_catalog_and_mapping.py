"""The catalog kind writes the file `beacon train --catalog` reads; mappings come from
beacon.yaml's `imports:` or a mapping file, validated like the rest of the config."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import main as cli_main
from functions.shared.config import ConfigError, parse_config
from models.catalog import load_catalog

ROOT = Path(__file__).resolve().parents[3]
CATALOG = """Variant SKU,Title,Vendor,Product Type,Variant Price
MUG-1,Mug,Acme,Kitchen,19.00
TEA-2,Tea,Leafy,Grocery,"1,020.50"
bad id!,Nope,Acme,Kitchen,1
MUG-1,Mug again,Acme,Kitchen,18
PEN-1,Pen,Acme,,2
"""


def test_a_catalog_import_feeds_the_recommenders_catalog_file(tmp_path: Path, capsys) -> None:
    source = tmp_path / "products.csv"
    source.write_text(CATALOG, encoding="utf-8")
    out = tmp_path / "items.jsonl"
    code = cli_main.main(
        ["import", str(source), "--kind", "catalog", "--out", str(out),
         "--config", str(ROOT / "beacon.yaml")]
    )  # fmt: skip
    assert code == 0
    items = load_catalog(out)  # the recommender's own loader (models/catalog.py)
    assert sorted(items) == ["MUG-1", "TEA-2"]
    assert items["TEA-2"].price == 1020.5 and items["TEA-2"].brand == "Leafy"
    assert items["MUG-1"].category == "Kitchen" and items["MUG-1"].name == "Mug"
    rejects = (tmp_path / "products.csv.rejects.csv").read_text().splitlines()
    assert rejects == [
        "row,field,reason",
        "4,item_id,item_id 'bad id!' is not a valid item id",
        "5,item_id,duplicate item_id: same as row 2",
        "6,category,category is missing",
    ]
    printed = capsys.readouterr().out
    assert "read 5 rows = 2 accepted + 3 rejected + 0 blank" in printed


def test_a_mapping_file_names_the_columns(tmp_path: Path) -> None:
    source = tmp_path / "odd.csv"
    source.write_text("ref,kind of thing\nX-1,Toys\n", encoding="utf-8")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("catalog:\n  columns: {item_id: ref, category: kind of thing}\n")
    out = tmp_path / "items.jsonl"
    args = [
        "import",
        str(source),
        "--kind",
        "catalog",
        "--mapping",
        str(mapping),
        "--out",
        str(out),
    ]
    assert cli_main.main([*args, "--config", str(ROOT / "beacon.yaml")]) == 0
    assert load_catalog(out)["X-1"].category == "Toys"
    mapping.write_text("catalog:\n  columns: {sku: ref}\n")
    assert cli_main.main([*args, "--config", str(ROOT / "beacon.yaml")]) == 1
    mapping.write_text("catalog:\n  columns: {item_id: nowhere}\n")
    assert cli_main.main([*args, "--config", str(ROOT / "beacon.yaml")]) == 2


def test_the_imports_section_is_validated_with_its_line() -> None:
    base = (ROOT / "beacon.yaml").read_text(encoding="utf-8")
    good = parse_config(base + "\nimports:\n  contacts:\n    columns: {email: Work Email}\n")
    assert good.imports.contacts.columns == {"email": "Work Email"}
    assert good.imports.orders.columns == {}
    with pytest.raises(ConfigError) as raised:
        parse_config(base + "\nimports:\n  contacts:\n    columns: {emial: Work Email}\n")
    assert "imports.contacts: unknown contacts fields emial" in str(raised.value)
    with pytest.raises(ConfigError) as raised:
        parse_config(base + "\nimports:\n  orders:\n    consent: {advertising: 3}\n")
    assert "imports.orders.consent.advertising" in str(raised.value)


def test_a_gzipped_csv_reads_like_the_plain_one(tmp_path: Path) -> None:
    import gzip

    source = tmp_path / "products.csv.gz"
    source.write_bytes(gzip.compress(CATALOG.encode()))
    out = tmp_path / "items.jsonl"
    args = ["import", str(source), "--kind", "catalog", "--out", str(out)]
    assert cli_main.main([*args, "--config", str(ROOT / "beacon.yaml")]) == 0
    assert sorted(load_catalog(out)) == ["MUG-1", "TEA-2"]


def test_the_documented_imports_section_is_valid() -> None:
    doc = (ROOT / "docs" / "import-export.md").read_text(encoding="utf-8")
    block = doc.split("```yaml\nimports:", 1)[1].split("```", 1)[0]
    base = (ROOT / "beacon.yaml").read_text(encoding="utf-8")
    config = parse_config(base + "\nimports:" + block)
    assert config.imports.contacts.consent["advertising"] == "Marketing Opt In"
    assert config.imports.contacts.traits == {"loyalty_tier": "Tier"}
