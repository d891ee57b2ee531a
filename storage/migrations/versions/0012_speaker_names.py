"""A workshop speaker's name by script ({"fr": ..., "ar": ...}), beside the plain text

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A new nullable column: the rows already stored keep their `speaker`, read as a plain text.
    with op.batch_alter_table("workshops") as batch:
        batch.add_column(sa.Column("speaker_names", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workshops") as batch:
        batch.drop_column("speaker_names")
