"""The policy is validated whole when it is built: from a TOML file, a dict or the
constructor, per-feature overrides included."""

from __future__ import annotations

import re
import tomllib

import pytest

from controller._errors import PolicyError
from controller.policy import Policy, Rule

# Each of these used to pass Policy.from_toml and fail only when the feature was judged.
FEATURE_PROBLEMS = [
    ("[features.age]\nstatistic = 'bogus'\n", "'statistic' parameter of [features.'age']"),
    ("[features.age]\nstatistic = 'chi2'\n", "'statistic' parameter of [features.'age']"),
    ("[features.age]\ntest = 'anderson'\n", "'test' parameter of [features.'age']"),
    ("[features.age]\nmin_effect = -1\n", "'min_effect' parameter of [features.'age']"),
    ("[features.age]\nmin_effect = 'high'\n", "'min_effect' parameter of [features.'age']"),
    ("[features.age]\nthreshold = 'x'\n", "'threshold' parameter of [features.'age']"),
    ("[features.age]\nignore = 'no'\n", "'ignore' parameter of [features.'age']"),
    ("[features.age]\nbins = 3\n", "unknown key(s) ['bins'] in [features.'age']"),
    ("[features]\nage = 1\n", "[features.'age'] of the policy must be a table"),
]


@pytest.mark.parametrize("text, needle", FEATURE_PROBLEMS)
def test_feature_overrides_are_checked_when_the_file_is_loaded(tmp_path, text, needle):
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as info:
        Policy.from_toml(path)
    assert needle in info.value.problem
    assert info.value.fix  # every policy error says how to fix it


@pytest.mark.parametrize("text, needle", FEATURE_PROBLEMS)
def test_feature_overrides_are_checked_from_a_dict_and_the_constructor(text, needle):
    data = tomllib.loads(text)
    with pytest.raises(PolicyError, match=re.escape(needle)):
        Policy.from_dict(data)
    with pytest.raises(PolicyError) as info:
        Policy(features=data["features"])
    assert needle in info.value.problem


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"features": 3}, "[features] of the policy must be a table"),
        ({"drift": 3}, "[drift] of the policy must be a table"),
        ({"drift": "fdr"}, "[drift] of the policy must be a table"),
        ({"drift": {"numeric": 3}}, "[drift.numeric] of the policy must be a table"),
    ],
)
def test_sections_that_are_not_tables(data, needle):
    with pytest.raises(PolicyError) as info:
        Policy.from_dict(data)
    assert needle in info.value.problem


def test_an_override_that_does_not_suit_the_features_kind_names_the_kind(tmp_path):
    """The one per-feature check left for judging time: kinds come from the baseline."""
    path = tmp_path / "policy.toml"
    path.write_text("[features.zip]\nstatistic = 'ks'\ntest = 'ks'\n")
    policy = Policy.from_toml(path)
    assert policy.rule("zip", "numeric") == Rule("ks", "ks", 0.1)
    with pytest.raises(PolicyError) as info:
        policy.rule("zip", "categorical")
    assert "'statistic' parameter of [features.'zip']" in info.value.problem
    assert "for categorical features" in info.value.problem
    assert "'ks'" in info.value.problem


def test_valid_overrides_load_and_apply():
    policy = Policy.from_dict(
        {
            "features": {
                "age": {"statistic": "ks", "min_effect": 0.2, "threshold": 0.3},
                "zip": {"ignore": True},
                "member": {"statistic": "hellinger"},
            }
        }
    )
    assert policy.rule("age", "numeric") == Rule("ks", "ks", 0.2, threshold=0.3)
    assert policy.rule("zip", "categorical").ignore
    assert policy.rule("member", "boolean") == Rule("hellinger", "chi2", 0.035)
    assert policy.rule("other", "numeric") == Policy().numeric
