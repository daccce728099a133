"""Grid routing speed: point-in-grid for a million random points in the district's bounding box
(one at a time on a sample, vectorised on all) and nearest-station lookups; JSON lines out.

    .venv/bin/python benchmarks/bench_routing.py [--deployment FILE] [--points N] [--city N]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import shapely
from shapely.geometry import box

from bot.deployment import load_deployment, read_grid
from bot.grids import Area, Grids, LocalMetres

SAMPLE = Path(__file__).resolve().parents[1] / "bot" / "sample" / "deployment.yaml"


def emit(metric: str, value: float, unit: str) -> None:
    print(json.dumps({"bench": "routing", "metric": metric, "value": value, "unit": unit}))


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def random_points(
    rng: np.random.Generator, bounds: tuple[float, float, float, float], count: int
) -> tuple[np.ndarray, np.ndarray]:
    west, south, east, north = bounds
    return rng.uniform(south, north, count), rng.uniform(west, east, count)


def bench(
    prefix: str, grids: Grids, bounds: tuple[float, float, float, float], args: argparse.Namespace
) -> None:
    rng = np.random.default_rng(args.seed)
    emit(f"{prefix}grids", len(grids), "grids")

    # One at a time, as the bot routes a report.
    lats, lons = random_points(rng, bounds, args.sample)
    scalar: list[str | None] = []
    seconds = timed(
        lambda: scalar.extend(grids.station_at(a, o) for a, o in zip(lats, lons, strict=True))
    )
    emit(f"{prefix}station_at_points_per_s", round(args.sample / seconds), "points/s")
    emit(f"{prefix}station_at_us_per_point", round(seconds / args.sample * 1e6, 2), "µs")
    if grids.stations_at(lats, lons) != scalar:
        raise SystemExit("the vectorised path disagrees with the scalar one")

    # All at once (re-routing every ticket after the grids change, a heat map...).
    lats, lons = random_points(rng, bounds, args.points)
    grids.station_indices_at(lats[:1000], lons[:1000])  # warm up
    found: list[np.ndarray] = []
    seconds = timed(lambda: found.append(grids.station_indices_at(lats, lons)))
    emit(f"{prefix}vectorised_points", args.points, "points")
    emit(f"{prefix}vectorised_seconds", round(seconds, 3), "s")
    emit(f"{prefix}vectorised_points_per_s", round(args.points / seconds), "points/s")
    emit(f"{prefix}share_inside_a_grid", round(float((found[0] >= 0).mean()), 4), "ratio")
    names: list[list[str | None]] = []
    seconds = timed(lambda: names.append(grids.stations_at(lats, lons)))
    emit(f"{prefix}vectorised_with_keys_seconds", round(seconds, 3), "s")

    # Nearest station for points just outside every grid: the case `route` adds.
    west, south, east, north = bounds
    local = LocalMetres(lat=(south + north) / 2, lon=(west + east) / 2)
    d_lon, d_lat = local.degrees_around(args.within * 1.5)
    around = (west - d_lon, south - d_lat, east + d_lon, north + d_lat)
    outside_lats: list[float] = []
    outside_lons: list[float] = []
    while len(outside_lats) < args.nearest:
        lats, lons = random_points(rng, around, args.nearest * 4)
        misses = grids.station_indices_at(lats, lons) < 0
        outside_lats.extend(lats[misses].tolist())
        outside_lons.extend(lons[misses].tolist())
    pairs = list(zip(outside_lats[: args.nearest], outside_lons[: args.nearest], strict=True))
    answers: list[object] = []
    seconds = timed(
        lambda: answers.extend(grids.nearest(a, o, within_m=args.within) for a, o in pairs)
    )
    emit(f"{prefix}nearest_lookups_per_s", round(len(pairs) / seconds), "lookups/s")
    emit(f"{prefix}nearest_us_per_lookup", round(seconds / len(pairs) * 1e6, 1), "µs")
    emit(
        f"{prefix}nearest_found_share",
        round(sum(a is not None for a in answers) / len(pairs), 4),
        "ratio",
    )
    seconds = timed(lambda: [grids.route(a, o, within_m=args.within) for a, o in pairs])
    emit(f"{prefix}route_outside_per_s", round(len(pairs) / seconds), "routes/s")


def city(cells: int, bounds: tuple[float, float, float, float]) -> dict[str, Area]:
    """A synthetic city: the district's box cut into about `cells` rectangular grids."""
    west, south, east, north = bounds
    side = max(1, round(cells**0.5))
    width, height = (east - west) / side, (north - south) / side
    return {
        f"g{row:03d}_{column:03d}": box(
            west + column * width,
            south + row * height,
            west + (column + 1) * width,
            south + (row + 1) * height,
        )
        for row in range(side)
        for column in range(side)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deployment", type=Path, default=SAMPLE)
    parser.add_argument("--points", type=int, default=1_000_000, help="vectorised points")
    parser.add_argument("--sample", type=int, default=20_000, help="points routed one by one")
    parser.add_argument("--nearest", type=int, default=5_000, help="nearest-station lookups")
    parser.add_argument("--within", type=float, default=200.0, help="nearest distance, metres")
    parser.add_argument("--city", type=int, default=400, help="synthetic grids (0: skip)")
    parser.add_argument("--seed", type=int, default=20260101)
    args = parser.parse_args()

    deployment = load_deployment(args.deployment)
    areas = {station.key: station.area.shape for station in deployment.stations}
    grids = Grids(areas)
    shapes = list(areas.values())
    if deployment.routing.boundary is not None:
        shapes.append(read_grid(deployment.routing.boundary).shape)
    west, south, east, north = (float(value) for value in shapely.total_bounds(shapes))
    bounds = (west, south, east, north)
    bench("", grids, bounds, args)
    if args.city:
        bench("city_", Grids(city(args.city, bounds)), bounds, args)


if __name__ == "__main__":
    main()
