"""Names of the model's sample sites, by role; used by inference, prediction and the ArviZ export."""

LLM_FACTORS = "llm_factors"
ITEM_FACTORS = "item_factors"
LLM_BIAS = "llm_bias"
ITEM_BIAS = "item_bias"
INTERCEPT = "intercept"
LLM_BIAS_SCALE = "llm_bias_scale"
ITEM_BIAS_SCALE = "item_bias_scale"
ITEM_GROUP_MEAN = "item_group_mean"
# Asymptotes (``ModelConfig.asymptotes``): per item group, the guessing floor and the slip (the share of the range
# above the floor that even a perfect LLM misses); per item row, the floor and ceiling they give.
ITEM_GROUP_FLOOR = "item_group_floor"
ITEM_GROUP_SLIP = "item_group_slip"
ITEM_FLOOR = "item_floor"
ITEM_CEILING = "item_ceiling"
OBSERVED = "correct"

__all__ = ["LLM_FACTORS", "ITEM_FACTORS", "LLM_BIAS", "ITEM_BIAS", "INTERCEPT", "LLM_BIAS_SCALE", "ITEM_BIAS_SCALE",
           "ITEM_GROUP_MEAN", "ITEM_GROUP_FLOOR", "ITEM_GROUP_SLIP", "ITEM_FLOOR", "ITEM_CEILING", "OBSERVED"]
