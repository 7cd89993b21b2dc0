"""Raw readers for geo.loaders: GIS formats via pyogrio and CSV (WKT or lon/lat columns) via csv."""

from __future__ import annotations

import csv
import io
import itertools
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pyogrio
import pyogrio.errors
import pyogrio.raw
import shapely
import shapely.errors

from geo.errors import GeoInputError

ObjectArray = npt.NDArray[np.object_]

GIS_SUFFIXES: Final = (".geojson", ".json", ".shp", ".gpkg", ".fgb", ".gdb")
CSV_SUFFIXES: Final = (".csv", ".txt")
SUPPORTED: Final = ".geojson, .json, .shp, .zip (with a shapefile), .gpkg, .gdb, .fgb or .csv"

_WKT_NAMES: Final = ("wkt", "geometry", "geom", "the_geom", "shape")
_LONLAT_NAMES: Final = (
    ("lon", "lat"),
    ("lng", "lat"),
    ("longitude", "latitude"),
    ("x", "y"),
    ("经度", "纬度"),
)
_SRID_PREFIX: Final = re.compile(r"^\s*SRID=(\d+);", re.IGNORECASE)
_LOOK_CLOSER: Final = frozenset({"", "S", "s", " ", "\t"})
_ZIP_MEMBER_EXTS: Final = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx")


@dataclass
class RawLayer:
    """What a reader found, before validation and reprojection (geometries in the source CRS)."""

    driver: str
    fields: list[str]
    columns: dict[str, Any]
    geometries: ObjectArray
    crs_text: str | None
    errors: dict[int, str] = field(default_factory=dict)


def cannot_read(path: str | Path, reason: str) -> GeoInputError:
    """The standard error for an unreadable or unsupported file."""
    return GeoInputError(f"cannot read {Path(path).name}: {reason}", field="file")


# --- GIS formats --------------------------------------------------------------------------------


@contextmanager
def unpacked(path: Path) -> Iterator[Path]:
    """Yield a readable path: the file itself, or the single shapefile/GIS file inside a zip."""
    if path.suffix.lower() != ".zip":
        yield path
        return
    try:
        with zipfile.ZipFile(path) as zf:
            names = [n for n in zf.namelist() if not n.endswith("/") and "__MACOSX" not in n]
            shps = [n for n in names if n.lower().endswith(".shp")]
            others = [n for n in names if n.lower().endswith((".gpkg", ".geojson", ".json", ".fgb"))]
            if len(shps) > 1:
                listed = ", ".join(sorted(shps))
                raise cannot_read(path, f"the zip holds several shapefiles ({listed}); upload one layer at a time")
            if not shps and len(others) > 1:
                listed = ", ".join(sorted(others))
                raise cannot_read(path, f"the zip holds several layers ({listed}); upload one layer at a time")
            if not shps and not others:
                raise cannot_read(path, "no shapefile (.shp) found in the zip")
            main = shps[0] if shps else others[0]
            stem = _stem(main)
            wanted = [main] + [
                n for n in names if n != main and _stem(n) == stem and Path(n).suffix.lower() in _ZIP_MEMBER_EXTS
            ]
            with tempfile.TemporaryDirectory(prefix="geo-zip-") as tmp:
                for name in wanted:
                    # Our own safe file names: no path traversal, no mangled non-ASCII member names.
                    target = Path(tmp) / ("layer" + Path(name).suffix.lower())
                    with zf.open(name) as src, open(target, "wb") as dst:
                        while chunk := src.read(1 << 20):
                            dst.write(chunk)
                yield Path(tmp) / ("layer" + Path(main).suffix.lower())
    except zipfile.BadZipFile as exc:
        raise cannot_read(path, f"not a valid zip file ({exc})") from None


def _stem(name: str) -> str:
    suffix = Path(name).suffix
    return name[: -len(suffix)] if suffix else name


def read_gis(
    path: Path,
    shown: str | Path,
    *,
    layer: str | int | None,
    encoding: str | None,
) -> RawLayer:
    """Read a GDAL vector file with pyogrio.raw.read (WKB + numpy columns), parse WKB vectorised."""
    try:
        meta, _fids, wkb, field_data = pyogrio.raw.read(path, layer=layer, encoding=encoding, force_2d=True)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise cannot_read(shown, _short(exc)) from None
    except (pyogrio.errors.FieldTypeError, pyogrio.errors.GeometryError, pyogrio.errors.CRSError) as exc:
        raise cannot_read(shown, _short(exc)) from None
    except (OSError, ValueError, RuntimeError) as exc:
        raise cannot_read(shown, _short(exc)) from None
    fields = [str(f) for f in meta["fields"]]
    errors: dict[int, str] = {}
    if wkb is None:
        raise cannot_read(shown, "the layer has no geometry column")
    wkb_arr = np.asarray(wkb, dtype=object)
    geoms = shapely.from_wkb(wkb_arr, on_invalid="ignore")
    geoms = np.asarray(geoms, dtype=object)
    for i in np.flatnonzero(shapely.is_missing(geoms)).tolist():
        if wkb_arr[i] is not None:  # None is a null geometry, reported later
            errors[i] = "unreadable geometry (invalid WKB)"
    columns: dict[str, Any] = dict(zip(fields, field_data, strict=True))
    return RawLayer(_driver_name(path), fields, columns, geoms, meta.get("crs"), errors)


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _driver_name(path: Path) -> str:
    return {
        ".geojson": "GeoJSON",
        ".json": "GeoJSON",
        ".shp": "ESRI Shapefile",
        ".gpkg": "GPKG",
        ".fgb": "FlatGeobuf",
        ".gdb": "OpenFileGDB",
    }.get(path.suffix.lower(), "unknown")


# --- CSV ----------------------------------------------------------------------------------------


def _decode(data: bytes, encoding: str | None, shown: str | Path) -> str:
    if encoding:
        try:
            return data.decode(encoding)
        except (UnicodeDecodeError, LookupError) as exc:
            raise cannot_read(shown, f"cannot decode as {encoding}: {exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")  # Chinese Excel exports (GBK superset)
    except UnicodeDecodeError:
        raise cannot_read(shown, "text is neither UTF-8 nor GB18030; pass the encoding") from None


def _delimiter(header_line: str) -> str:
    if "," in header_line:
        return ","
    for delim in ("\t", ";", "|"):
        if delim in header_line:
            return delim
    return ","


def _find_geometry_columns(header: list[str], wkt_column: str | None, shown: str | Path) -> list[int]:
    lowered = [h.strip().lower() for h in header]
    if wkt_column is not None:
        if wkt_column in header:
            return [header.index(wkt_column)]
        if wkt_column.lower() in lowered:
            return [lowered.index(wkt_column.lower())]
        raise cannot_read(shown, f"no column named {wkt_column!r}; columns are {', '.join(header)}")
    for name in _WKT_NAMES:
        if name in lowered:
            return [lowered.index(name)]
    for lon_name, lat_name in _LONLAT_NAMES:
        if lon_name in lowered and lat_name in lowered:
            return [lowered.index(lon_name), lowered.index(lat_name)]
    raise cannot_read(
        shown,
        "no geometry column; expected a WKT column (wkt, geometry, geom) or lon/lat (lng/lat, x/y) columns; "
        f"columns are {', '.join(header)}",
    )


def _unique_names(header: list[str]) -> list[str]:
    """Make column names unique ("name", "name_2", …) so no column is silently dropped."""
    seen: dict[str, int] = {}
    out = []
    for j, name in enumerate(header):
        name = name or f"column_{j + 1}"
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def read_csv(
    path: Path,
    shown: str | Path,
    *,
    wkt_column: str | None,
    encoding: str | None,
    progress: Callable[[int], None] | None,
) -> RawLayer:
    """Read a CSV with a WKT column (optionally EWKT "SRID=n;…") or lon/lat columns."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise cannot_read(shown, exc.strerror or str(exc)) from None
    text = _decode(data, encoding, shown)
    del data
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first_line))
    try:
        header = next(reader)
    except StopIteration:
        raise cannot_read(shown, "the file is empty") from None
    except csv.Error as exc:
        raise cannot_read(shown, f"bad CSV: {exc}") from None
    header = _unique_names([h.strip() for h in header])
    geom_cols = _find_geometry_columns(header, wkt_column, shown)
    width = len(header)
    errors: dict[int, str] = {}
    rows: list[list[str]] = []
    try:
        while chunk := list(itertools.islice(reader, 100_000)):
            rows.extend(chunk)
            if progress is not None:
                progress(len(rows))
    except csv.Error as exc:
        raise cannot_read(shown, f"bad CSV at line {reader.line_num}: {exc}") from None
    odd = [i for i, row in enumerate(rows) if len(row) != width]
    if odd:
        blank = {i for i in odd if not rows[i] or (len(rows[i]) == 1 and not rows[i][0].strip())}
        if blank:
            rows = [row for i, row in enumerate(rows) if i not in blank]
            odd = [i for i, row in enumerate(rows) if len(row) != width]
        for i in odd:
            errors[i] = f"row has {len(rows[i])} values but the header has {width}"
            rows[i] = (rows[i] + [""] * width)[:width]
    raw_columns: list[tuple[str, ...]] = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    del rows
    srids: set[int] = set()
    if len(geom_cols) == 1:
        geoms = _wkt_geometries(raw_columns[geom_cols[0]], errors, srids)
    else:
        geoms = _lonlat_geometries(raw_columns[geom_cols[0]], raw_columns[geom_cols[1]], errors)
    if len(srids) > 1:
        raise cannot_read(shown, f"rows use different SRIDs ({', '.join(map(str, sorted(srids)))})")
    fields = [h for j, h in enumerate(header) if j not in geom_cols]
    columns: dict[str, Any] = {
        h: [v if v != "" else None for v in raw_columns[j]] for j, h in enumerate(header) if j not in geom_cols
    }
    crs_text = f"EPSG:{srids.pop()}" if srids else None
    return RawLayer("CSV", fields, columns, geoms, crs_text, errors)


def _wkt_geometries(values: tuple[str, ...], errors: dict[int, str], srids: set[int]) -> ObjectArray:
    wkt = np.array(values, dtype=object)
    # Only empty cells, leading blanks and EWKT "SRID=n;" prefixes need a closer look.
    for i in [i for i, v in enumerate(values) if v[:1] in _LOOK_CLOSER]:
        value = values[i].strip()
        if value[:5].upper() == "SRID=":
            match = _SRID_PREFIX.match(value)
            if match is None:
                errors.setdefault(i, f"unparsable WKT {value[:40]!r}")
                value = ""
            else:
                srids.add(int(match.group(1)))
                value = value[match.end() :]
        wkt[i] = value or None
    geoms = np.asarray(shapely.from_wkt(wkt, on_invalid="ignore"), dtype=object)
    for i in np.flatnonzero(shapely.is_missing(geoms)).tolist():
        if wkt[i] is None:
            continue
        text = str(wkt[i])
        try:
            shapely.from_wkt(text)
            reason = "unparsable WKT"
        except shapely.errors.GEOSException as exc:
            reason = f"unparsable WKT ({_short(exc)})"
        errors.setdefault(i, f"{reason}: {text[:40]!r}")
    return geoms


def _floats(values: tuple[str, ...], name: str, errors: dict[int, str]) -> npt.NDArray[np.float64]:
    try:
        return np.fromiter(map(float, values), dtype=np.float64, count=len(values))
    except ValueError:
        pass
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        value = value.strip()
        if not value:
            errors.setdefault(i, f"missing {name}")
            continue
        try:
            out[i] = float(value)
        except ValueError:
            errors.setdefault(i, f"{name} {value[:40]!r} is not a number")
    return out


def _lonlat_geometries(lons: tuple[str, ...], lats: tuple[str, ...], errors: dict[int, str]) -> ObjectArray:
    x = _floats(lons, "longitude", errors)
    y = _floats(lats, "latitude", errors)
    geoms = np.asarray(shapely.points(x, y), dtype=object)
    if errors:
        geoms[np.fromiter(errors.keys(), dtype=np.intp)] = None
    return geoms
