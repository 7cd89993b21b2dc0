"""`python -m bench [--only NAME] [--quick]`: run the benchmarks, print the table, write bench/results/latest.*"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import traceback
from collections.abc import Callable

from bench import procs
from bench.http_load import Settings, generator
from bench.util import Row, console, machine, postgres_facts

BENCHMARKS = ("noop", "locate", "import", "intake", "public", "case-list", "open311", "routing", "dispatch-latency")
DB_BENCHMARKS = BENCHMARKS[1:]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only this benchmark ({', '.join(BENCHMARKS)}); repeat or comma-separate for several",
    )
    p.add_argument(
        "--quick", action="store_true", help="smoke check: a scale-0.1 city (database <name>_quick) and 5-second runs"
    )
    p.add_argument("--duration", type=float, help="seconds of measured HTTP load (default 25, quick 5)")
    p.add_argument("--warmup", type=float, help="seconds of HTTP warm-up load before measuring (default 3, quick 1)")
    p.add_argument("--connections", type=int, default=64, help="concurrent HTTP connections (default 64)")
    p.add_argument(
        "--wrk-threads",
        type=int,
        default=1,
        help="wrk threads (default 1: on 2 cores one wrk thread leaves the most CPU to the server)",
    )
    p.add_argument(
        "--quiet-wait",
        type=float,
        default=90.0,
        help="wait up to this many seconds for a quiet machine before each timed run (default 90)",
    )
    p.add_argument(
        "--max-noise",
        type=float,
        default=0.3,
        help="measure a run again if other users' processes used more CPU cores than this during it (default 0.3)",
    )
    p.add_argument(
        "--retries",
        type=int,
        default=1,
        help="how many times a noisy run is measured again; the quietest attempt is reported (default 1)",
    )
    p.add_argument(
        "--no-variants",
        action="store_true",
        help="skip the diagnostic/tuning variants (noop SO_REUSEPORT, locate and import variants)",
    )
    p.add_argument("--no-upsert", action="store_true", help="import: skip the re-import (upsert) run")
    p.add_argument(
        "--file",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="import: also write the components to a GeoPackage and time `grid-mgmt import components FILE`"
        " (default: on in full runs, off with --quick)",
    )
    p.add_argument("--rebuild-city", action="store_true", help="reload the bench city even if it looks complete")
    p.add_argument("--routing-cases", type=int, help="routing: cases to route (default 20,000, quick 2,000)")
    p.add_argument("--rate", type=float, default=200.0, help="dispatch-latency: reports per second (default 200)")
    p.add_argument("--latency-duration", type=float, help="dispatch-latency: seconds of reports (default 20, quick 5)")
    args = p.parse_args(argv)
    only: list[str] = []
    for item in args.only or []:
        only += [x.strip() for x in item.split(",") if x.strip()]
    bad = [x for x in only if x not in BENCHMARKS]
    if bad:
        p.error(f"unknown benchmark {', '.join(bad)}; choose from {', '.join(BENCHMARKS)}")
    args.selected = tuple(b for b in BENCHMARKS if not only or b in only)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    procs.install_handlers()
    started = time.monotonic()
    cfg = Settings(
        duration=args.duration or (5.0 if args.quick else 25.0),
        warmup=args.warmup if args.warmup is not None else (1.0 if args.quick else 3.0),
        connections=args.connections,
        wrk_threads=args.wrk_threads,
        quiet_wait=args.quiet_wait,
        max_noise=args.max_noise,
        retries=args.retries,
    )
    meta: dict[str, object] = {
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "command": " ".join(["python -m bench", *(argv if argv is not None else sys.argv[1:])]),
        "quick": args.quick,
        "selected": list(args.selected),
        "http": {
            "duration_s": cfg.duration,
            "warmup_s": cfg.warmup,
            "connections": cfg.connections,
            "wrk_threads": cfg.wrk_threads,
        },
        "load_generator": generator(),
        "machine": machine(),
    }
    rows: list[Row] = []
    db = None
    if any(b in args.selected for b in DB_BENCHMARKS):
        from bench.city import bench_db, ensure_city

        db = bench_db(args.quick)
        console.rule(f"bench database {db.name}")
        try:
            city = ensure_city(db, force=args.rebuild_city)
            meta["city"] = city
            meta["postgres"] = asyncio.run(postgres_facts(db.dsn))
            console.print(f"  {city['counts']}")
        except Exception as exc:  # seeds or migrations not ready: report, still run noop
            console.print(f"[red]bench database not ready: {exc}[/red]")
            traceback.print_exc()
            meta["city_error"] = f"{type(exc).__name__}: {exc}"
            db = None

    def step(name: str, fn: Callable[[], list[Row]]) -> None:
        console.rule(name)
        try:
            got = fn()
            if got is not rows:
                rows.extend(got)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            traceback.print_exc()
            rows.append(Row(name, "-", "error", False, f"{type(exc).__name__}: {exc}"[:400]))

    try:
        if "noop" in args.selected:
            from bench import noop

            step("noop", lambda: noop.run(cfg, variants=not args.no_variants, sink=rows))
        if "locate" in args.selected:
            if db is None:
                rows.append(Row("locate", "≥ 5,000 req/s, p99 ≤ 20 ms", "not run", False, str(meta.get("city_error"))))
            else:
                from bench import locate

                step("locate", lambda: locate.run(cfg, db, variants=not args.no_variants, sink=rows))
        if "import" in args.selected:
            if db is None:
                rows.append(Row("import", "≥ 50,000 features/s", "not run", False, str(meta.get("city_error"))))
            else:
                from bench import imports

                imports.quiet_wait_s = args.quiet_wait
                imports.max_noise, imports.retries = args.max_noise, args.retries

                step(
                    "import",
                    lambda: imports.run(
                        db,
                        upsert=not args.no_upsert,
                        variants=not args.no_variants,
                        file=args.file if args.file is not None else not args.quick,
                        sink=rows,
                    ),
                )
        if "intake" in args.selected:
            if db is None:
                rows.append(Row("intake", "≥ 2,000 req/s, p99 ≤ 50 ms", "not run", False, str(meta.get("city_error"))))
            else:
                from bench import intake

                # beside the bare no-op POST ×2 of this run (intake.run_intake measures it when noop was not run)
                noop_post = next((r for r in rows if r.benchmark == "noop POST ×2"), None)
                step(
                    "intake",
                    lambda: intake.run_intake(cfg, db, variants=not args.no_variants, sink=rows, noop=noop_post),
                )
        if "public" in args.selected:
            if db is None:
                rows.append(Row("public", "≥ 1,500 req/s, p99 ≤ 50 ms", "not run", False, str(meta.get("city_error"))))
            else:
                from bench import public

                step("public", lambda: public.run(cfg, db, sink=rows))
        if "case-list" in args.selected:
            if db is None:
                rows.append(Row("case-list", "p95 ≤ 50 ms", "not run", False, str(meta.get("city_error"))))
            else:
                from bench import case_list

                step("case-list", lambda: case_list.run_list(cfg, db, variants=not args.no_variants, sink=rows))
        if "open311" in args.selected:
            if db is None:
                rows.append(Row("open311", "p95 ≤ 100 ms", "not run", False, str(meta.get("city_error"))))
            else:
                from bench import open311

                step("open311", lambda: open311.run(cfg, db, variants=not args.no_variants, sink=rows))
        if "routing" in args.selected:
            if db is None:
                rows.append(Row("routing", "≥ 1,000 cases/s", "not run", False, str(meta.get("city_error"))))
            else:
                from bench import routing

                step("routing", lambda: routing.run(db, cfg, cases=args.routing_cases, sink=rows))
        if "dispatch-latency" in args.selected:
            if db is None:
                rows.append(Row("dispatch-latency", "p95 ≤ 1 s", "not run", False, str(meta.get("city_error"))))
            else:
                from bench import dispatch

                seconds = args.latency_duration or (5.0 if args.quick else 20.0)
                step("dispatch-latency", lambda: dispatch.run(db, cfg, rate=args.rate, seconds=seconds, sink=rows))
    except (KeyboardInterrupt, SystemExit) as exc:  # Ctrl-C, or SIGTERM/SIGHUP (see procs.install_handlers)
        code = exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 130
        console.print(f"[red]interrupted ({code}); killing child processes, writing what was measured[/red]")
        procs.kill_all()
        meta["interrupted"] = code
    finally:
        procs.kill_all()

    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    from bench import report

    report.show(rows, meta)
    js, md = report.save(rows, meta)
    console.print(f"wrote {js.relative_to(os.getcwd()) if js.is_relative_to(os.getcwd()) else js} and {md.name}")
    interrupted = meta.get("interrupted")
    if isinstance(interrupted, int) and interrupted:
        return interrupted
    return 0 if all(r.passed is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
