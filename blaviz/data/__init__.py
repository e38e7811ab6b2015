"""Synthetic benchmarks used by the BLA experiments: MQAR (Zoology) and RegBench (Akyürek et al.)."""
from .dfa import (
    DFA,
    NUM_SYMBOLS,
    canonical_key,
    canonicalize,
    legal_next,
    minimize,
    next_symbol_distribution,
    random_dfa,
    sample_string,
)
from .mqar import (
    IGNORE_INDEX,
    MQAR_TEST_SLICES,
    MQAR_TRAIN_COUNTS,
    MQAR_TRAIN_MIX,
    MQARConfig,
    MQARData,
    MQARSlices,
    make_mqar,
    mqar_sets,
    mqar_test_slices,
    mqar_train_set,
    pad_and_concat,
    slice_name,
)
from .regbench import (
    PAD_ID,
    SEP_ID,
    VOCAB_SIZE,
    RegBenchData,
    make_regbench,
    oracle_logits,
    tv_distance,
    validity_accuracy,
)

__all__ = [
    # MQAR
    "IGNORE_INDEX", "MQARConfig", "MQARData", "MQARSlices", "MQAR_TRAIN_MIX", "MQAR_TRAIN_COUNTS", "MQAR_TEST_SLICES",
    "make_mqar", "mqar_train_set", "mqar_test_slices", "pad_and_concat",
    "mqar_sets", "slice_name",
    # automata
    "DFA", "NUM_SYMBOLS", "random_dfa", "minimize", "canonicalize", "canonical_key", "sample_string",
    "legal_next", "next_symbol_distribution",
    # RegBench
    "SEP_ID", "PAD_ID", "VOCAB_SIZE", "RegBenchData", "make_regbench", "validity_accuracy", "tv_distance",
    "oracle_logits",
]
