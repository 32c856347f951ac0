-- IMAPFilter rules against a Postfach server, run by crates/server/tests/clients.rs with the
-- account's details in the environment (POSTFACH_PORT, POSTFACH_USER, POSTFACH_PASSWORD).
-- Each rule is one of a filtering user's habits; the test checks the server's state after.
-- Prints "idling" before it waits in IDLE for the test to deliver one more message, and
-- "imapfilter: done" at the end.

options.timeout = 30
options.certificates = false
-- Only a NO [TRYCREATE] may make IMAPFilter create a missing target (RFC 9051 §7.1).
options.create = false
options.expunge = true

local account = IMAP {
  server = '127.0.0.1',
  port = tonumber(os.getenv('POSTFACH_PORT')),
  username = os.getenv('POSTFACH_USER'),
  password = os.getenv('POSTFACH_PASSWORD'),
  ssl = 'auto',
}
local inbox = account.INBOX

local exist, recent, unseen = inbox:check_status()
assert(exist == 9, 'STATUS MESSAGES: ' .. tostring(exist))
assert(unseen == 8, 'STATUS UNSEEN: ' .. tostring(unseen))

-- Server-side SEARCH: SUBJECT, FROM, LARGER (OR), BEFORE, BODY, TO, NOT.
inbox:contain_subject('invoice'):move_messages(account.Archive)
local urgent = inbox:contain_from('boss@example.org') + inbox:is_larger(4000)
urgent:mark_flagged()
inbox:is_older(365):delete_messages()
inbox:contain_body('unsubscribe'):add_flags({ '$Newsletter' })
account:create_mailbox('Filtered/Bills')
inbox:contain_to('bills@example.com'):copy_messages(account['Filtered/Bills'])
local unread = inbox:select_all() - inbox:is_seen()
unread:contain_subject('read me'):mark_seen()
-- Client-side: a regular expression over the headers it fetches.
inbox:match_header('X-Spam-Flag: YES'):move_messages(account.Junk)
-- A target that does not exist: the server says TRYCREATE, IMAPFilter creates it and retries.
inbox:contain_subject('for later'):move_messages(account.Later)

-- IDLE: wait for the message the test delivers, then file it.
print('idling')
io.stdout:flush()
local update = inbox:enter_idle()
assert(update, 'IDLE ended without an update')
inbox:contain_subject('invoice'):move_messages(account.Archive)
print('imapfilter: done')
