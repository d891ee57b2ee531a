"""A broadcast's audience as long as `workshop:` and the longest workshop id (100 characters)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # 64 characters held `workshop:` and an id of 55 at most; the catalogue allows 100.
    with op.batch_alter_table("broadcasts") as batch:
        batch.alter_column("audience", existing_type=sa.String(64), type_=sa.String(120),
                           existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("broadcasts") as batch:
        batch.alter_column("audience", existing_type=sa.String(120), type_=sa.String(64),
                           existing_nullable=False)
