//! SFIA responsibility levels 1 to 5, the currency of the gate (SPEC §4).
//!
//! A [`Level`] can only hold 1..=5, so every comparison the gate makes (`operator < min_level`,
//! `approver >= required`) is between real levels. Levels 6 and 7 of SFIA (set strategy,
//! inspire) have no runbook-running meaning and are rejected where a policy file names them.

use std::fmt;

/// An SFIA responsibility level, 1 (follow) to 5 (ensure, advise). Ordered: `L1 < L5`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Level(u8);

impl Level {
    /// Level 1: follow.
    pub const L1: Level = Level(1);
    /// Level 2: assist.
    pub const L2: Level = Level(2);
    /// Level 3: apply.
    pub const L3: Level = Level(3);
    /// Level 4: enable.
    pub const L4: Level = Level(4);
    /// Level 5: ensure, advise.
    pub const L5: Level = Level(5);
    /// Every level, lowest first.
    pub const ALL: [Level; 5] = [Level::L1, Level::L2, Level::L3, Level::L4, Level::L5];

    /// The level `number`, or `None` outside 1..=5.
    #[must_use]
    pub fn new(number: u8) -> Option<Level> {
        (1..=5).contains(&number).then_some(Level(number))
    }

    /// The level as a number, 1..=5.
    #[must_use]
    pub fn get(self) -> u8 {
        self.0
    }

    /// What an operator of this level may do under the default gate matrix (SPEC §4.3), in
    /// plain words for `opsgate whoami`. A policy file may tighten it; `whoami` says so itself.
    #[must_use]
    pub fn summary(self) -> &'static str {
        match self.0 {
            1 => {
                "may run approved `check` runbooks; any other approved runbook with min_level 1 \
                 runs only after an L3+ operator approves the run; may not widen targets, run \
                 draft runbooks or approve anything"
            }
            2 => {
                "may run approved runbooks with min_level up to 2; `restore` and `provision` runs \
                 in production need an L3+ approval; may not widen targets, run draft runbooks or \
                 approve anything"
            }
            3 => {
                "may run approved runbooks with min_level up to 3, in production too, and widen \
                 targets; may approve runs and gate steps of L1-L2 operators"
            }
            4 => {
                "may run approved runbooks with min_level up to 4, and draft or changed runbooks \
                 outside production; may approve runs and gate steps of L1-L3 operators and \
                 approve runbooks with min_level up to 3 into the catalog"
            }
            _ => {
                "may run any runbook, draft or changed ones in production with `--reason`, and \
                 use `--break-glass`; may approve any other operator's run or gate step and any \
                 runbook into the catalog"
            }
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "L{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::Level;

    #[test]
    fn only_one_to_five_are_levels() {
        assert_eq!(Level::new(0), None);
        assert_eq!(Level::new(6), None);
        let numbers: Vec<u8> = (1..=5)
            .map(|number| Level::new(number).expect("1..=5 are levels").get())
            .collect();
        assert_eq!(numbers, [1, 2, 3, 4, 5]);
    }

    #[test]
    fn levels_order_and_display_as_l_n() {
        assert!(Level::L1 < Level::L2 && Level::L4 < Level::L5);
        assert_eq!(Level::L3.to_string(), "L3");
        assert_eq!(
            Level::ALL.map(|level| level.to_string()).join(","),
            "L1,L2,L3,L4,L5"
        );
    }

    #[test]
    fn every_level_has_its_own_summary() {
        let mut summaries: Vec<&str> = Level::ALL.iter().map(|level| level.summary()).collect();
        summaries.dedup();
        assert_eq!(summaries.len(), 5);
    }
}
