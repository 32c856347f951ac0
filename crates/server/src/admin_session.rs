//! `postfach who` and `postfach kick`: the running server's IMAP sessions, asked over its
//! control socket (`control`). Without a running server both say so and exit with 1.

use std::path::Path;

use anyhow::bail;
use clap::Args;
use serde::Serialize;

use crate::admin_output::{print_json, rfc3339, table};
use crate::control::{self, Reply, Request};
use crate::sessions::SessionInfo;

/// `postfach who`
#[derive(Debug, Args)]
pub(crate) struct WhoArgs {
    /// Only this user's sessions.
    user: Option<String>,
    /// Also list connections that have not logged in (yet).
    #[arg(long)]
    all: bool,
    /// Print one JSON document: {"sessions": [{id, user, address, transport, connected,
    /// logged_in, selected}]}, dates in RFC 3339.
    #[arg(long)]
    json: bool,
}

/// `postfach kick`
#[derive(Debug, Args)]
pub(crate) struct KickArgs {
    /// The user whose sessions end.
    user: String,
    /// Print one JSON document: {"user", "kicked", "ended"}.
    #[arg(long)]
    json: bool,
}

/// One session of `who --json`.
#[derive(Debug, Serialize)]
struct WhoSession {
    id: u64,
    user: Option<String>,
    address: String,
    transport: String,
    connected: String,
    logged_in: Option<String>,
    selected: Option<String>,
}

#[derive(Debug, Serialize)]
struct WhoOutput {
    sessions: Vec<WhoSession>,
}

#[derive(Debug, Serialize)]
struct KickOutput {
    user: String,
    kicked: usize,
    ended: usize,
}

/// `who [USER] [--all]`: one line per session; logged-in ones only, unless `--all`.
pub(crate) async fn who(args: WhoArgs, data_dir: &Path) -> anyhow::Result<()> {
    let Reply::Sessions { sessions } = control::ask(data_dir, &Request::Who).await? else {
        bail!("the server answered `who` with something else");
    };
    let wanted = |s: &SessionInfo| match (&s.user, &args.user) {
        (None, _) => args.all && args.user.is_none(),
        (Some(user), Some(only)) => user.eq_ignore_ascii_case(only),
        (Some(_), None) => true,
    };
    let sessions: Vec<WhoSession> = sessions
        .into_iter()
        .filter(wanted)
        .map(|s| WhoSession {
            id: s.id,
            user: s.user,
            address: s.address,
            transport: s.transport,
            connected: rfc3339(s.connected),
            logged_in: s.logged_in.map(rfc3339),
            selected: s.selected,
        })
        .collect();
    if args.json {
        return print_json(&WhoOutput { sessions });
    }
    if sessions.is_empty() {
        eprintln!("postfach: no sessions");
        return Ok(());
    }
    let dash = || "-".to_owned();
    let rows: Vec<Vec<String>> = sessions
        .into_iter()
        .map(|s| {
            vec![
                s.user.unwrap_or_else(dash),
                s.address,
                s.transport,
                s.connected,
                s.logged_in.unwrap_or_else(dash),
                s.selected.unwrap_or_else(dash),
            ]
        })
        .collect();
    print!("{}", table(&["USER", "ADDRESS", "TRANSPORT", "CONNECTED", "LOGGED IN", "SELECTED"], &rows));
    Ok(())
}

/// `kick USER`: every session of the user gets `* BYE` and closes; returns once they have.
pub(crate) async fn kick(args: KickArgs, data_dir: &Path) -> anyhow::Result<()> {
    let request = Request::Kick { user: args.user.clone() };
    let Reply::Kicked { kicked, ended } = control::ask(data_dir, &request).await? else {
        bail!("the server answered `kick` with something else");
    };
    if args.json {
        return print_json(&KickOutput { user: args.user, kicked, ended });
    }
    let user = &args.user;
    match (kicked, ended) {
        (0, _) => eprintln!("postfach: {user} has no sessions"),
        (k, e) if k == e => eprintln!("postfach: ended {k} session(s) of {user}"),
        (k, e) => {
            eprintln!("postfach: told {k} session(s) of {user} to end; {} still finishing a command", k - e)
        }
    }
    Ok(())
}
