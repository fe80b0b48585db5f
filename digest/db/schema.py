"""Every domain's tables on one ``MetaData``: what migrations compare against.

Relationships name classes of other domains by string; importing every models
module here lets SQLAlchemy resolve them whichever domain is used first.
"""

from __future__ import annotations

from digest.bounces import models as bounce_models
from digest.db.base import Base
from digest.delivery import models as delivery_models
from digest.papers import models as paper_models
from digest.subscriptions import models as subscription_models

metadata = Base.metadata

__all__ = ["bounce_models", "delivery_models", "metadata", "paper_models", "subscription_models"]
