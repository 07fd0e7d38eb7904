"""A seeded credit-scoring scenario in the style of Agrawal's loan benchmark.

Columns: salary, commission, age, elevel (education level 0-4), car (make 1-20), zipcode
(category z0-z8), hvalue (house value), hyears (years owned), loan (loan amount), and the
label ``approved`` (1 = a good loan), with 5% of labels flipped. Three approval rules:

- ``"age"``: Agrawal's function 1, applicants under 40 or from 60;
- ``"bands"``: Agrawal's function 2, salary bands by age group;
- ``"disposable"``: Agrawal's function 7, ``0.67 (salary + commission) - 0.2 loan > 20000``.

``income_shift`` scales salaries and commissions and ``loan_shift`` loan sizes, to mimic an
economic shift (covariate drift). The rules read real-terms incomes, so the shift changes
what the model sees, not what makes a good loan.

``timeline`` plays weeks of production: applications decided each week, whose outcomes
(labels) are known one week later. From ``shift_week`` incomes fall by a quarter and loans
grow by 40%; from ``concept_week`` the approval rule itself changes (by default from bands
to disposable income), which no input-drift test can see.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    rule: str = "bands",
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
    if rule == "age":
        good = (age < 40) | (age >= 60)
    elif rule == "bands":
        good = (
            ((age < 40) & (s >= 50_000) & (s <= 100_000))
            | ((age >= 40) & (age < 60) & (s >= 75_000) & (s <= 125_000))
            | ((age >= 60) & (s >= 25_000) & (s <= 75_000))
        )
    elif rule == "disposable":
        good = 0.67 * (s + commission) - 0.2 * frame["loan"].to_numpy() > 20_000
    else:
        raise ValueError(f"unknown rule {rule!r}: use 'age', 'bands' or 'disposable'")
    flip = rng.random(n) < noise
    frame[TARGET] = (good ^ flip).astype(int)
    return frame


def credit_pipeline(trees: int = 100, *, max_depth: int = 10, seed: int = 0):
    """An unfitted model of the scenario's ``FEATURES``: the zip code one-hot encoded
    (codes unseen in training ignored), the other features as they are, and a random
    forest of ``trees`` trees."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    encode = ColumnTransformer(
        [("zip", OneHotEncoder(handle_unknown="ignore"), ["zipcode"])], remainder="passthrough"
    )
    forest = RandomForestClassifier(
        n_estimators=trees, max_depth=max_depth, random_state=seed, n_jobs=1
    )
    return Pipeline([("encode", encode), ("forest", forest)])


SHIFT_WEEK, CONCEPT_WEEK = 4, 8
ID, DECIDED = "application_id", "decided_at"


@dataclass(frozen=True)
class Week:
    number: int
    batch: pd.DataFrame  # application_id, the features, decided_at
    labels: pd.DataFrame  # application_id, approved: known a week after the decisions
    shifted: bool
    new_rule: bool


def timeline(
    weeks: int = 10,
    rows: int = 2000,
    *,
    seed: int = 0,
    shift_week: int = SHIFT_WEEK,
    concept_week: int = CONCEPT_WEEK,
    start: str = "2026-01-05",
    rules: tuple[str, str] = ("bands", "disposable"),
    noise: float = 0.05,
) -> list[Week]:
    """Weekly production batches of the scenario, with their (late) labels: ``rules`` are
    the approval rule before and from ``concept_week``, ``noise`` the share of flipped
    labels."""
    out = []
    for week in range(1, weeks + 1):
        shifted, new_rule = week >= shift_week, week >= concept_week
        data = credit_data(
            rows,
            seed=seed + 100 + week,
            income_shift=0.75 if shifted else 1.0,
            loan_shift=1.4 if shifted else 1.0,
            rule=rules[1] if new_rule else rules[0],
            noise=noise,
        )
        data.insert(0, ID, [f"w{week}-{i}" for i in range(rows)])
        data[DECIDED] = (
            pd.Timestamp(start, tz="UTC")
            + pd.Timedelta(weeks=week - 1)
            + pd.to_timedelta(np.arange(rows) * (7 * 24 * 60 // rows), unit="min")
        )
        out.append(Week(week, data.drop(columns=TARGET), data[[ID, TARGET]], shifted, new_rule))
    return out
