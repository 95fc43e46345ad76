"""Names of the model's sample sites, by role; used by inference, prediction and the ArviZ export."""

LLM_FACTORS = "llm_factors"
ITEM_FACTORS = "item_factors"
LLM_BIAS = "llm_bias"
ITEM_BIAS = "item_bias"
INTERCEPT = "intercept"
LLM_BIAS_SCALE = "llm_bias_scale"
ITEM_BIAS_SCALE = "item_bias_scale"
ITEM_GROUP_MEAN = "item_group_mean"
OBSERVED = "correct"

__all__ = ["LLM_FACTORS", "ITEM_FACTORS", "LLM_BIAS", "ITEM_BIAS", "INTERCEPT", "LLM_BIAS_SCALE", "ITEM_BIAS_SCALE",
           "ITEM_GROUP_MEAN", "OBSERVED"]
