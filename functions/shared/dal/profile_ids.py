"""ProfileIdsPort over the identity graph's nodes (`id#<type>:<value>` / `node`).

The touchpoint's lookup: eventually consistent (half the read units; a mapping a
moment old is corrected by the decision item's redirect), one GetItem for one
identifier and one BatchGetItem for several. The one place that turns an
identifier into a profile id for it, so another rule (a profile id derived from a
lone anonymous id, with no node written) changes only this module.
"""

from __future__ import annotations

from collections.abc import Sequence

from functions.shared.dal.dynamo import DynamoTable
from functions.shared.dal.identity_store import node_key
from functions.shared.identifiers import Identifier


class GraphProfileIds:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def profile_ids(self, identifiers: Sequence[Identifier]) -> dict[Identifier, str]:
        wanted = list(dict.fromkeys(identifiers))
        if not wanted:
            return {}
        if len(wanted) == 1:
            item = self.table.get(node_key(wanted[0]))
            return {wanted[0]: str(item["profile_id"])} if item else {}
        by_pk = {node_key(i)["pk"]: i for i in wanted}
        items = self.table.batch_get([node_key(i) for i in wanted], consistent=False)
        return {by_pk[str(item["pk"])]: str(item["profile_id"]) for item in items}
