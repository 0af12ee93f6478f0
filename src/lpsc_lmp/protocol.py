"""The protocol of the paper behind lpsc-lmp (arXiv:2512.11650), as defaults.

For each model and temperature: 300 independent NVT trajectories of 70 ps (random initial
velocities, one seed each) from one starting structure; the Li MSD from t = 0 of every
trajectory averaged over them, and D the slope of a straight line fitted over 15-65 ps divided
by 2d (d = 3). Temperatures 700-1200 K. Shorter runs scale the fit window with their length.
"""

from __future__ import annotations

#: Trajectories per model and temperature.
PAPER_SEEDS = 300
#: Length of each trajectory (ps).
PAPER_TIME_PS = 70.0
#: Fit window of the seed-averaged MSD (ps) for a 70 ps trajectory.
PAPER_WINDOW_PS = (15.0, 65.0)
#: Temperatures of the study (K).
PAPER_TEMPERATURES_K = (700.0, 800.0, 900.0, 1000.0, 1100.0, 1200.0)


def default_window(time_ps: float) -> tuple[float, float]:
    """The paper's window scaled to a trajectory of ``time_ps`` ps: ``(15/70 t, 65/70 t)`` ps."""
    if not time_ps > 0:
        raise ValueError(f"trajectory length must be > 0 ps, got {time_ps}")
    f = time_ps / PAPER_TIME_PS
    return (PAPER_WINDOW_PS[0] * f, PAPER_WINDOW_PS[1] * f)
