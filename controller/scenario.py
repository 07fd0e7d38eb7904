"""A seeded credit-scoring data generator in the style of Agrawal's loan benchmark.

Columns: salary, commission, age, elevel (education level 0-4), car (make 1-20), zipcode
(category z0-z8), hvalue (house value), hyears (years owned), loan (loan amount), and the
label ``approved`` (1 = good loan), from Agrawal's rule 2 (salary bands by age) with 5% of
labels flipped. ``income_shift`` scales salaries and commissions and ``loan_shift`` loan
sizes, to mimic an economic shift (covariate drift).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FEATURES = ["salary", "commission", "age", "elevel", "car", "zipcode", "hvalue", "hyears", "loan"]
TARGET = "approved"


def credit_data(
    n: int,
    *,
    seed: int = 0,
    income_shift: float = 1.0,
    loan_shift: float = 1.0,
    noise: float = 0.05,
) -> pd.DataFrame:
    """``n`` applicants with their label."""
    rng = np.random.default_rng(seed)
    salary = rng.uniform(20_000, 150_000, n)
    commission = np.where(salary >= 75_000, 0.0, rng.uniform(10_000, 75_000, n))
    age = rng.integers(20, 81, n)
    zipcode = rng.integers(0, 9, n)
    frame = pd.DataFrame(
        {
            "salary": salary * income_shift,
            "commission": commission * income_shift,
            "age": age,
            "elevel": rng.integers(0, 5, n),
            "car": rng.integers(1, 21, n),
            "zipcode": pd.Series([f"z{z}" for z in zipcode], dtype=object),
            "hvalue": (9 - zipcode) * 100_000 * rng.uniform(0.5, 1.5, n),
            "hyears": rng.integers(1, 31, n),
            "loan": rng.uniform(0, 500_000, n) * loan_shift,
        }
    )
    # The rule sees the applicant's real-terms income, so a pure shift in units is drift
    # the model must cope with, not a change of concept.
    s = salary
    good = (
        ((age < 40) & (s >= 50_000) & (s <= 100_000))
        | ((age >= 40) & (age < 60) & (s >= 75_000) & (s <= 125_000))
        | ((age >= 60) & (s >= 25_000) & (s <= 75_000))
    )
    flip = rng.random(n) < noise
    frame[TARGET] = (good ^ flip).astype(int)
    return frame
