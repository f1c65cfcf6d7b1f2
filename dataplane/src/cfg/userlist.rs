//! The users of a `userlist` section: `user NAME password HASH` or
//! `user NAME insecure-password TEXT` (groups and other keywords after them are not needed here).

use super::{Document, words};

/// A user of a userlist.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub secret: Secret,
}

#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(test, derive(Debug))]
pub enum Secret {
    /// A crypt(3) hash (`password`).
    Hash(String),
    /// The password itself (`insecure-password`).
    Plain(String),
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret: this may end in a log.
        write!(f, "User({:?})", self.name)
    }
}

/// The users of `userlist NAME` in the document (none when the section is missing).
pub fn users(doc: &Document, userlist: &str) -> Vec<User> {
    let Some(section) = doc.find("userlist", userlist) else {
        return Vec::new();
    };
    section
        .body
        .iter()
        .filter_map(|line| match words::split(line).as_slice() {
            [user, name, kind, secret, ..] if user == "user" => {
                let secret = match kind.as_str() {
                    "password" => Secret::Hash(secret.clone()),
                    "insecure-password" => Secret::Plain(secret.clone()),
                    _ => return None,
                };
                Some(User {
                    name: name.clone(),
                    secret,
                })
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_users_of_one_userlist() {
        let doc = Document::parse(
            "userlist controller\n  user admin password $6$s$h groups g\n  user p insecure-password x\n  group g\nuserlist other\n  user o password $5$a$b\n",
        );
        let names: Vec<(String, Secret)> = users(&doc, "controller")
            .into_iter()
            .map(|u| (u.name, u.secret))
            .collect();
        assert_eq!(
            names,
            [
                ("admin".into(), Secret::Hash("$6$s$h".into())),
                ("p".into(), Secret::Plain("x".into()))
            ]
        );
        assert!(users(&doc, "missing").is_empty());
        assert_eq!(format!("{:?}", users(&doc, "other")), "[User(\"o\")]");
    }
}
