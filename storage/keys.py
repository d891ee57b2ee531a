"""Every Redis key Tadamon uses, with its lifetime and why. Nothing else names a key."""

from __future__ import annotations

import hashlib

PREFIX = "tadamon"

# Conversation state: what flow a person is in and the choices they were offered. Losing it only
# restarts a conversation, so it expires after a day of silence.
SESSION_TTL = 24 * 3600

# Platforms deliver at least once; a redelivered message must have no second effect. Telegram
# and Meta retry for up to a day or so, hence two days.
DEDUPE_TTL = 2 * 24 * 3600

# One message per person at a time. The lock expires by itself if a process dies holding it;
# it must outlive the slowest handler, not much more.
USER_LOCK_TTL = 30.0
USER_LOCK_WAIT = 20.0

# Flood protection per person: at most THROTTLE_LIMIT messages in THROTTLE_WINDOW seconds.
THROTTLE_WINDOW = 10
THROTTLE_LIMIT = 15
# Remember for a while that the person was told to slow down, so we say it once.
THROTTLE_NOTICE_TTL = THROTTLE_WINDOW


def session(channel: str, user_id: str) -> str:
    return f"{PREFIX}:session:{channel}:{user_id}"


# Keys that name a platform message hold a hash of its id: a WhatsApp `wamid.` is the base64
# of bytes that hold the sender's phone number. 128 bits: no two messages share a mark.
def _message(message_id: str) -> str:
    return hashlib.sha256(message_id.encode()).hexdigest()[:32]


def dedupe(channel: str, message_id: str) -> str:
    return f"{PREFIX}:seen:{channel}:{_message(message_id)}"


# A platform message acknowledged with a read receipt (WhatsApp "mark as read"): only its first
# delivery is, so a redelivered message does not mark the chat read again. Kept as long as a
# redelivery may come.
def read_receipt(channel: str, message_id: str) -> str:
    return f"{PREFIX}:read:{channel}:{_message(message_id)}"


def user_lock(channel: str, user_id: str) -> str:
    return f"{PREFIX}:lock:user:{channel}:{user_id}"


def throttle(channel: str, user_id: str, window: int) -> str:
    return f"{PREFIX}:throttle:{channel}:{user_id}:{window}"


def throttle_notice(channel: str, user_id: str) -> str:
    return f"{PREFIX}:throttle-notice:{channel}:{user_id}"


# Cooperative link codes give a role, so they must not be guessed: wrong codes are counted per
# person and per client address (web chat; a keyed hash of it), and once either count reaches
# its limit no code is checked for the rest of the window, not even a right one. The window
# starts at the first wrong code and does not grow with more. An address may be shared (a
# venue's Wi-Fi behind one NAT), hence its higher limit.
LINK_CODE_WINDOW = 3600
LINK_CODE_PERSON_LIMIT = 5
LINK_CODE_CLIENT_LIMIT = 20


# Both counters of an attempt are read and written by one script: the {hash tag} keeps them in
# the same slot of a Redis Cluster.
def link_code_failures_of_contact(contact_id: int) -> str:
    return f"{PREFIX}:{{link-code-failures}}:contact:{contact_id}"


def link_code_failures_of_client(client: str) -> str:
    return f"{PREFIX}:{{link-code-failures}}:client:{client}"


# Bumped at every catalogue import so every process rebuilds its in-memory caches (search index).
CATALOGUE_VERSION = f"{PREFIX}:catalogue:version"

# Pictures and files of web chat replies, fetched by the browser right after the reply.
MEDIA_TTL = 24 * 3600


def media(token: str) -> str:
    return f"{PREFIX}:media:{token}"


# A group chat is told once that the bot works in private; then it stays quiet there.
GROUP_NOTICE_TTL = 365 * 24 * 3600


def group_notice(channel: str, chat_id: str) -> str:
    return f"{PREFIX}:group-notice:{channel}:{chat_id}"


# A platform asked us to slow down (Telegram 429 retry_after): every process of the bot waits.
def channel_pause(channel: str) -> str:
    return f"{PREFIX}:pause:{channel}"


# Accepted webhook bodies wait here until handled: a Redis stream read by a consumer group, so
# a body a process took but never finished (it died) is claimed by another after INBOX_CLAIM_IDLE.
INBOX_GROUP = "tadamon"
INBOX_MAXLEN = 200_000
INBOX_CLAIM_IDLE = 60.0


def inbox(channel: str) -> str:
    return f"{PREFIX}:inbox:{channel}"


# Each inbox consumer (one per process and channel) says it is alive by refreshing this key
# every INBOX_HEARTBEAT seconds. Once it is gone (the process was killed), another consumer takes
# over the bodies it had taken and not finished, without waiting INBOX_CLAIM_IDLE; a consumer
# whose event loop stalls longer than the TTL only has its bodies handled twice, which the
# dedupe mark turns into nothing.
INBOX_HEARTBEAT = 2.0
INBOX_CONSUMER_TTL = 8.0


def inbox_consumer(channel: str, consumer: str) -> str:
    return f"{PREFIX}:inbox-consumer:{channel}:{consumer}"


# WhatsApp lists hold ten rows; the rest of a long list of choices waits here for "more".
PAGES_TTL = SESSION_TTL


def choice_pages(channel: str, user_id: str) -> str:
    return f"{PREFIX}:pages:{channel}:{user_id}"


# Shared send-rate buckets (token bucket state per channel, per recipient): a process that sends
# takes a token here first, so all processes together stay under the platform's limit.
def rate_bucket(name: str) -> str:
    return f"{PREFIX}:rate:{name}"


def telegram_chat_bucket(user_id: str) -> str:
    """The name of the rate bucket of one Telegram chat (one message a second to any chat)."""
    return f"telegram:chat:{user_id}"


# Each channel's messages sent in its last window (about a second), for every process: a
# sorted set of departure times (see SendWindow), expiring a second after the last send.
def send_window(channel: str) -> str:
    return f"{PREFIX}:sent:{channel}"


# The replies of a channel waiting for room in its send window, which bulk messages leave to
# them: a sorted set of names scored with the time each stops counting (a second after it
# would have been let in), so a waiter whose process died holds bulk back a second at most.
def replies_waiting(channel: str) -> str:
    return f"{PREFIX}:sent:{channel}:replies"


# Web chat sessions: which token hashes this deployment issued (SQL keeps them for good; this
# copy spares a query per message and may be lost at any time).
WEB_SESSION_TTL = 24 * 3600


def web_session(token_hash: str) -> str:
    return f"{PREFIX}:web-session:{token_hash}"


# The random key of the hashes of web chat clients' addresses: made once, by whichever process
# asks first (SET NX), shared by all; never expires (a new key only resets limits per address).
WEB_CLIENT_KEY = f"{PREFIX}:web-client-key"


# New web chat sessions per client address: a token bucket of `rate_bucket` (see RateLimiter),
# named after the keyed hash of the address, never the address.
def web_sessions_bucket(client_hash: str) -> str:
    return f"web-sessions:{client_hash}"


# "Continue on WhatsApp / Telegram": a one-time code that moves a web chat person's language,
# registrations and saved stands to the app they open. It is read off one screen and sent from
# the same phone within minutes, so it lives half an hour; taking it deletes it (single use).
# Wrong codes are counted with the cooperative link codes' counters (link_code_failures_*).
TRANSFER_CODE_TTL = 30 * 60


def transfer_code(code: str) -> str:
    return f"{PREFIX}:transfer-code:{code}"


def transfer_code_of_contact(contact_id: int) -> str:
    """The codes issued to a contact (a set), so that erasing them revokes them (SQLite may
    give an erased contact's id to the next new one)."""
    return f"{PREFIX}:transfer-code-of:{contact_id}"


# Failed sign-ins to the organizer console, counted per account and per client address (keyed
# hashes of both: no email or address in Redis) with the link codes' script: once either count
# reaches its limit, no password is checked for the rest of the window, not even a right one.
# An address may be shared (an office behind one NAT), hence its higher limit.
CONSOLE_LOGIN_WINDOW = 15 * 60
CONSOLE_LOGIN_ACCOUNT_LIMIT = 5
CONSOLE_LOGIN_CLIENT_LIMIT = 20


def console_login_failures_of_account(account_hash: str) -> str:
    return f"{PREFIX}:{{console-login-failures}}:account:{account_hash}"


def console_login_failures_of_client(client_hash: str) -> str:
    return f"{PREFIX}:{{console-login-failures}}:client:{client_hash}"


# A catalogue uploaded to the console waits here between its dry run and "apply", which another
# process of the deployment may serve: the file's name and bytes, for an hour (an organizer
# reads the dry run, then applies; an older upload is checked again).
CATALOGUE_UPLOAD_TTL = 3600


def catalogue_upload(upload_id: str) -> str:
    return f"{PREFIX}:catalogue-upload:{upload_id}"


# Set when an upload was applied (who, when), so applying it again says so; lives as long as
# the upload.
def catalogue_upload_applied(upload_id: str) -> str:
    return f"{PREFIX}:catalogue-upload-applied:{upload_id}"


# One console import at a time across every process: two at once would both create the same
# new rows and one would fail half-way. It expires by itself if a process dies holding it.
CATALOGUE_IMPORT_LOCK = f"{PREFIX}:catalogue-import-lock"
CATALOGUE_IMPORT_LOCK_TTL = 10 * 60
