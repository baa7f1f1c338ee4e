"""The field's algorithms as pure, registered tensor functions: advantages, policy losses, KL,
importance-sampling corrections.

The trainer looks each one up by name in exactly one place and never special-cases a name.
"""

from reasonlab.algos.advantages import ADVANTAGES
from reasonlab.algos.correction import IS_CORRECTIONS
from reasonlab.algos.kl import KL_ESTIMATORS
from reasonlab.algos.losses import AGGREGATIONS, POLICY_LOSSES, clipped_policy_loss

__all__ = ["ADVANTAGES", "AGGREGATIONS", "IS_CORRECTIONS", "KL_ESTIMATORS", "POLICY_LOSSES",
           "clipped_policy_loss"]
