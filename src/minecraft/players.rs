//! Parsing the output of `list` into a count, a maximum and names.

use serde::Serialize;

use super::command::strip_formatting;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlayerList {
    pub online: u32,
    pub max: u32,
    pub names: Vec<String>,
}

/// Parses the answer to `list` in the forms servers use:
/// - vanilla 1.13+: `There are 2 of a max of 20 players online: Alex, Steve`
/// - vanilla before 1.13: `There are 2/20 players online:Alex, Steve` (names may follow a newline)
/// - Bukkit/Spigot: `There are 2 out of maximum 20 players online.` then the names
///
/// Formatting codes are ignored. Returns `None` when the text is none of these, so a server
/// whose `list` is unusual shows "players unknown" rather than a wrong number.
pub fn parse_list(raw: &str) -> Option<PlayerList> {
    let text = strip_formatting(raw);
    let rest = text.trim_start().strip_prefix("There are ")?;
    let (online, rest) = leading_number(rest)?;
    let rest = rest.trim_start();
    let (max, rest) = if let Some(r) = rest.strip_prefix('/') {
        leading_number(r)?
    } else if let Some(r) = rest.strip_prefix("of a max of ") {
        leading_number(r.trim_start())?
    } else if let Some(r) = rest.strip_prefix("out of maximum ") {
        leading_number(r.trim_start())?
    } else {
        return None;
    };
    let names_part = match rest.find(':') {
        Some(i) => &rest[i + 1..],
        // Bukkit puts the names on the following lines, sometimes under group headings.
        None => rest.split_once('\n').map_or("", |(_, after)| after),
    };
    let names: Vec<String> = names_part
        .split([',', '\n'])
        .map(|n| n.trim())
        .map(|n| n.rsplit_once(": ").map_or(n, |(_, after)| after))
        .filter(|n| !n.is_empty())
        .map(str::to_owned)
        .collect();
    Some(PlayerList { online, max, names })
}

fn leading_number(s: &str) -> Option<(u32, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n = s[..end].parse().ok()?;
    Some((n, &s[end..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_list_format_parses() {
        let cases = [
            (
                "There are 2 of a max of 20 players online: Alex, Steve",
                (2, 20, vec!["Alex", "Steve"]),
            ),
            (
                "There are 0 of a max of 20 players online: ",
                (0, 20, vec![]),
            ),
            (
                "There are 1/10 players online:\nNotch",
                (1, 10, vec!["Notch"]),
            ),
            (
                "§6There are §c2§6 out of maximum §c50§6 players online.\n§6default§r: Alex, Steve",
                (2, 50, vec!["Alex", "Steve"]),
            ),
        ];
        for (text, (online, max, names)) in cases {
            let parsed = parse_list(text).unwrap_or_else(|| panic!("{text:?} did not parse"));
            assert_eq!((parsed.online, parsed.max), (online, max), "{text:?}");
            assert_eq!(parsed.names, names, "{text:?}");
        }
    }

    #[test]
    fn other_text_is_not_mistaken_for_a_player_list() {
        assert_eq!(parse_list("Unknown command"), None);
        assert_eq!(parse_list("There are many players"), None);
    }
}
