//! The navigation: one table of the dashboard's sections and who may see each. A section the
//! caller holds no permission for is not listed (its routes refuse them anyway).

use crate::auth::authenticate::Principal;
use crate::auth::rbac::Permission as P;

/// Who may see a section.
#[derive(Debug, Clone, Copy)]
pub enum Visible {
    /// Every signed-in user.
    Always,
    /// Any of these permissions, held globally or in at least one guild.
    AnyOf(&'static [P]),
    /// Any of these permissions, held globally.
    AnyGlobal(&'static [P]),
}

/// One entry of the navigation table.
pub struct Section {
    pub label: &'static str,
    pub href: &'static str,
    pub visible: Visible,
}

/// The dashboard's sections, in the order the navigation lists them. Add a page's entry here
/// when its route lands (so the navigation never links to a page that does not exist).
pub const SECTIONS: &[Section] = &[
    Section {
        label: "Overview",
        href: "/",
        visible: Visible::Always,
    },
    Section {
        label: "Audit log",
        href: "/audit",
        visible: Visible::AnyOf(&[P::AuditRead]),
    },
    Section {
        label: "Live logs",
        href: "/logs",
        visible: Visible::AnyGlobal(&[P::LogsView]),
    },
    Section {
        label: "Guilds",
        href: "/guilds",
        visible: Visible::AnyOf(&[P::BotView]),
    },
    Section {
        label: "Minecraft",
        href: "/minecraft",
        visible: Visible::AnyGlobal(&[P::MinecraftView]),
    },
    Section {
        label: "Administration",
        href: "/admin",
        visible: Visible::AnyGlobal(&[P::UsersManage, P::RolesManage, P::ApiKeysManage]),
    },
    Section {
        label: "Account",
        href: "/account",
        visible: Visible::Always,
    },
];

/// A navigation entry as the layout renders it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NavItem {
    pub label: &'static str,
    pub href: &'static str,
    /// The page being shown is this section (or below it).
    pub current: bool,
}

/// The sections `principal` may see, the one containing `path` marked current.
pub fn visible(principal: &Principal, path: &str) -> Vec<NavItem> {
    SECTIONS
        .iter()
        .filter(|s| match s.visible {
            Visible::Always => true,
            Visible::AnyOf(ps) => ps.iter().any(|p| principal.grants.allows_anywhere(*p)),
            Visible::AnyGlobal(ps) => ps.iter().any(|p| principal.grants.allows_globally(*p)),
        })
        .map(|s| NavItem {
            label: s.label,
            href: s.href,
            current: is_under(path, s.href),
        })
        .collect()
}

fn is_under(path: &str, href: &str) -> bool {
    if href == "/" {
        return path == "/";
    }
    path == href
        || path
            .strip_prefix(href)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::is_under;

    #[test]
    fn a_section_is_current_on_its_own_pages_only() {
        assert!(is_under("/", "/"));
        assert!(!is_under("/audit", "/"));
        assert!(is_under("/audit", "/audit"));
        assert!(is_under("/audit/12", "/audit"));
        assert!(!is_under("/auditx", "/audit"));
    }
}
