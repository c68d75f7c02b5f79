"""A subscription as stored (``alerts_subscriptions``) and back: shared by the MongoDB and the
in-memory adapters."""

from __future__ import annotations

from services.alerts.domain.notifications import SubscriptionFilter
from services.alerts.ports import Document, SigningSecret, Subscription, SubscriptionEdit


def secret_document(secret: SigningSecret) -> Document:
    return {
        "secret": secret.secret,
        "created_at": secret.created_at,
        "expires_at": secret.expires_at,
    }


def subscription_document(subscription: Subscription) -> Document:
    return {
        "_id": subscription.id,
        "url": subscription.url,
        "filter": subscription.filter.model_dump(mode="json"),
        "description": subscription.description,
        "state": subscription.state,
        "state_reason": subscription.state_reason,
        "secrets": [secret_document(s) for s in subscription.secrets],
        "secrets_version": subscription.secrets_version,
        "failing_since": subscription.failing_since,
        "created_at": subscription.created_at,
        "updated_at": subscription.updated_at,
        **({} if subscription.disabled_at is None else {"disabled_at": subscription.disabled_at}),
    }


def subscription_from_document(doc: Document) -> Subscription:
    return Subscription(
        id=doc["_id"],
        url=doc["url"],
        filter=SubscriptionFilter.model_validate(doc["filter"]),
        description=doc.get("description"),
        state=doc["state"],
        state_reason=doc.get("state_reason"),
        secrets=tuple(
            SigningSecret(s["secret"], s["created_at"], s.get("expires_at")) for s in doc["secrets"]
        ),
        secrets_version=int(doc.get("secrets_version", 0)),
        failing_since=doc.get("failing_since"),
        created_at=doc["created_at"],
        updated_at=doc.get("updated_at"),
        disabled_at=doc.get("disabled_at"),
    )


def edit_fields(edit: SubscriptionEdit) -> Document:
    """The stored fields an edit sets."""
    fields: Document = {}
    if "url" in edit.changed and edit.url is not None:
        fields["url"] = edit.url
    if "filter" in edit.changed and edit.filter is not None:
        fields["filter"] = edit.filter.model_dump(mode="json")
    if "description" in edit.changed:
        fields["description"] = edit.description
    return fields
