"""Measure component import speed: `python -m tests.importer.measure_speed [N ...]` (creates and drops imp_speed)."""

# Loads 102,400 unit grids (a 100 m lattice near 110.23E 32.22N), then per N: imports N random point components
# into the empty table, re-imports the same data (nothing changes) and once more with every status changed.

from __future__ import annotations

import asyncio
import os
import sys
import time

import asyncpg

from grid_mgmt.db.migrate import upgrade
from grid_mgmt.imports.service import LayerData, import_layer
from tests.importer.importer_synth import BASE_SQL, Lattice

SERVER = os.environ.get("GRID_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/grid_mgmt").rsplit("/", 1)[0]
DB = "imp_speed"
DSN = f"{SERVER}/{DB}".replace("+asyncpg", "")


def _upgrade() -> None:
    upgrade(f"{SERVER}/{DB}")


async def main(sizes: list[int]) -> None:
    admin = await asyncpg.connect(f"{SERVER}/postgres".replace("+asyncpg", ""))
    await admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
    await admin.execute(f"CREATE DATABASE {DB}")
    try:
        await asyncio.to_thread(_upgrade)
        conn = await asyncpg.connect(DSN)
        await conn.execute(BASE_SQL)
        lattice = Lattice(side=16, cells=20)
        for layer, data in (("regions", lattice.regions()), ("grids", lattice.grids())):
            print((await import_layer(DSN, layer, data)).summary())
        for n in sizes:
            await conn.execute("TRUNCATE component")
            await conn.execute("ANALYZE component")
            data = lattice.components(n)
            print(f"load average {os.getloadavg()[0]:.2f}")
            t0 = time.perf_counter()
            report = await import_layer(DSN, "components", data)
            wall = time.perf_counter() - t0
            print(f"fresh:     {report.summary()} | wall {n / wall:,.0f} features/s")
            print(f"identical: {(await import_layer(DSN, 'components', data)).summary()}")
            changed = LayerData(data.geometries, {**data.columns, "status": ["damaged"] * n})
            print(f"changed:   {(await import_layer(DSN, 'components', changed)).summary()}")
            more = lattice.components(n // 10, seed=2, first=n // 2 + 1)  # 10 % more, into the loaded table
            print(f"add 10 %:  {(await import_layer(DSN, 'components', more)).summary()}")
        await conn.close()
    finally:
        await admin.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        await admin.close()


if __name__ == "__main__":
    asyncio.run(main([int(a) for a in sys.argv[1:]] or [100_000, 1_000_000]))
