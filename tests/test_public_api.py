"""The measures' public API, pinned: names, signatures, and a well-formed ``__all__``."""

from __future__ import annotations

import inspect

import klkit
import klkit.divergences
import klkit.errors
import klkit.information
import klkit.measures
import klkit.renyi

P, K = inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.KEYWORD_ONLY
OPTIONS = [("axis", -1), ("base", None), ("kind", "probs"), ("q_kind", None), ("validate", True)]
EMPTY = inspect.Parameter.empty
TWO = [("p", P, EMPTY), ("q", P, EMPTY)] + [(n, K, d) for n, d in OPTIONS]
MEASURES = {
    "surprise": [("p", P, EMPTY), ("base", K, None)],
    "entropy": [("p", P, EMPTY)] + [(n, K, d) for n, d in OPTIONS if n != "q_kind"],
    "cross_entropy": TWO,
    "kl_divergence": TWO,
    "js_divergence": [*TWO[:2], ("weights", K, None), *TWO[2:]],
    "decompose": TWO,
    "normalize": [("x", P, EMPTY), ("axis", K, -1)],
}
TABLE = [("pxy", P, EMPTY), ("axes", K, (-2, -1)), ("base", K, None), ("kind", K, "probs"), ("validate", K, True)]
NO_BASE = [(n, k, d) for n, k, d in TWO if n != "base"]
# the family beyond measures.py, module by module
FAMILY = {
    "information": {
        "mutual_information": TABLE,
        "joint_entropy": TABLE,
        "conditional_entropy": [TABLE[0], ("given", K, -2), *TABLE[1:]],
    },
    "divergences": {
        "total_variation": NO_BASE,
        "hellinger_distance": NO_BASE,
        "js_distance": [*TWO, ("keepdims", K, False)],
        "f_divergence": [*TWO[:2], ("f", inspect.Parameter.POSITIONAL_OR_KEYWORD, EMPTY), *NO_BASE[2:]],
    },
    "renyi": {
        "renyi_divergence": [*TWO[:2], ("alpha", inspect.Parameter.POSITIONAL_OR_KEYWORD, EMPTY), *TWO[2:]],
        "renyi_entropy": [("p", P, EMPTY), ("alpha", inspect.Parameter.POSITIONAL_OR_KEYWORD, EMPTY)]
        + [(n, K, d) for n, d in OPTIONS if n != "q_kind"],
    },
}
# the measures also accept distribution objects, whose options (method, n_samples, ...) arrive
# through **distribution_options
DISTRIBUTION_HOOK = {
    "entropy",
    "cross_entropy",
    "kl_divergence",
    "js_divergence",
    "decompose",
    "total_variation",
    "hellinger_distance",
    "js_distance",
    "f_divergence",
    "renyi_divergence",
}


def test_measures_are_exported_with_their_signatures():
    for name, expected in MEASURES.items():
        assert name in klkit.__all__
        fn = getattr(klkit, name)
        assert fn is getattr(klkit.measures, name)
        params = list(inspect.signature(fn).parameters.values())
        if name in DISTRIBUTION_HOOK:
            assert params[-1].kind is inspect.Parameter.VAR_KEYWORD and params[-1].name == "distribution_options"
            params = params[:-1]
        assert [(p.name, p.kind, p.default) for p in params] == expected, name


def test_the_family_is_exported_with_its_signatures():
    for module_name, functions in FAMILY.items():
        module = getattr(klkit, module_name)
        assert sorted(module.__all__) == sorted(functions), module_name
        for name, expected in functions.items():
            assert name in klkit.__all__
            fn = getattr(klkit, name)
            assert fn is getattr(module, name)
            params = list(inspect.signature(fn).parameters.values())
            if name in DISTRIBUTION_HOOK:
                assert params[-1].kind is inspect.Parameter.VAR_KEYWORD and params[-1].name == "distribution_options"
                params = params[:-1]
            assert [(p.name, p.kind, p.default) for p in params] == expected, name
            doc = fn.__doc__
            assert doc and ">>> import klkit" in doc and "References" in doc and "Raises" in doc, name


def test_decomposition_is_a_named_tuple():
    assert "Decomposition" in klkit.__all__
    assert klkit.Decomposition._fields == ("entropy", "cross_entropy", "kl_divergence")
    assert inspect.signature(klkit.decompose).return_annotation in (klkit.Decomposition, "Decomposition")


def test_measures_module_exports_exactly_the_measures():
    assert sorted(klkit.measures.__all__) == sorted([*MEASURES, "Decomposition"])


def test_all_is_sorted_unique_and_every_name_exists():
    for module in (klkit, klkit.measures, klkit.errors, klkit.information, klkit.divergences, klkit.renyi):
        names = module.__all__
        assert list(names) == sorted(names), module.__name__
        assert len(set(names)) == len(names), module.__name__
        for name in names:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_errors_subclass_the_builtins_users_catch():
    assert issubclass(klkit.errors.InvalidDistributionError, ValueError)
    assert issubclass(klkit.errors.InvalidArgumentError, ValueError)
    assert issubclass(klkit.errors.ShapeError, ValueError)
    assert issubclass(klkit.errors.BackendMismatchError, TypeError)
    assert issubclass(klkit.errors.NotRegisteredError, NotImplementedError)


def test_every_public_measure_has_a_docstring_with_an_example():
    for name in MEASURES:
        doc = getattr(klkit, name).__doc__
        assert doc and ">>> import klkit" in doc, name


def test_thread_control_is_exported():
    for name in ("get_num_threads", "set_num_threads"):
        assert name in klkit.__all__
        assert ">>> import klkit" in getattr(klkit, name).__doc__, name
    assert list(inspect.signature(klkit.set_num_threads).parameters) == ["n"]
    assert list(inspect.signature(klkit.get_num_threads).parameters) == []
