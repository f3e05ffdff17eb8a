"""The service's topics: every name derived from one prefix, one topic per kind of event."""

from __future__ import annotations

from dataclasses import dataclass

# The kinds of event (schemas.models.Kind's values; settings sit below schemas, so the values
# are spelt here and tests/unit/test_settings.py checks they match) -> their topic after the prefix.
KIND_TOPICS = {
    "view": "banner-views",
    "click": "banner-clicks",
    "upgrade": "upgrades",
    "downgrade": "downgrades",
    "shop": "shops",
    "subscribers": "subscriber-counts",
}


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names, all derived from one prefix."""

    prefix: str = "upsell."

    def of(self, kind: str) -> str:
        """The topic that carries ``kind`` (a :class:`schemas.models.Kind`, or its value)."""
        return f"{self.prefix}{KIND_TOPICS[kind]}"

    @property
    def views(self) -> str:
        return self.of("view")

    @property
    def clicks(self) -> str:
        return self.of("click")

    @property
    def upgrades(self) -> str:
        return self.of("upgrade")

    @property
    def downgrades(self) -> str:
        return self.of("downgrade")

    @property
    def shops(self) -> str:
        return self.of("shop")

    @property
    def subscriber_counts(self) -> str:
        return self.of("subscribers")

    @property
    def dead_letters(self) -> str:
        return f"{self.prefix}dead-letters"

    @property
    def changelog(self) -> str:
        """The compacted changelog of every state change in Redis (docs/state.md)."""
        return f"{self.prefix}state-changelog"

    @property
    def counted(self) -> tuple[str, str, str, str]:
        """The high-volume topics whose events are counted through the batch applier."""
        return (self.views, self.clicks, self.upgrades, self.downgrades)

    @property
    def all(self) -> tuple[str, ...]:
        return (
            *self.counted,
            self.shops,
            self.subscriber_counts,
            self.dead_letters,
            self.changelog,
        )
