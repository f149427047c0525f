//! Deployment shapes in `kvsim plan`: colocated `RxTPt` (R replicas of t
//! GPUs, each prefilling and decoding) and disaggregated `XxTPp + YxTPd` (X
//! prefill replicas of p GPUs and Y decode replicas of d GPUs), the candidate
//! key `shape` that sets one, and every shape of a GPU count.

use std::fmt;

use crate::scenario::apply_override;

/// The candidate key of a deployment shape.
pub const SHAPE: &str = "shape";

/// Replicas of one tensor-parallel degree.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Group {
    /// How many replicas.
    pub replicas: u32,
    /// GPUs per replica.
    pub tp: u32,
}

impl Group {
    /// GPUs of the group.
    pub fn gpus(self) -> u64 {
        u64::from(self.replicas) * u64::from(self.tp)
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}xTP{}", self.replicas, self.tp)
    }
}

/// How a deployment's GPUs serve: every replica whole, or two pools.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Shape {
    /// Replicas that prefill and decode their own requests.
    Colocated(Group),
    /// A prefill pool and a decode pool (`[deployment] mode =
    /// "disaggregated"`).
    Disaggregated {
        /// The prefill pool.
        prefill: Group,
        /// The decode pool.
        decode: Group,
    },
}

/// The two modes a shape can have, as the plan's tables name them.
pub const COLOCATED: &str = "colocated";
/// See [`COLOCATED`].
pub const DISAGGREGATED: &str = "disaggregated";

impl Shape {
    /// GPUs of the deployment.
    pub fn gpus(self) -> u64 {
        match self {
            Shape::Colocated(g) => g.gpus(),
            Shape::Disaggregated { prefill, decode } => prefill.gpus() + decode.gpus(),
        }
    }

    /// `colocated` or `disaggregated`.
    pub fn mode(self) -> &'static str {
        match self {
            Shape::Colocated(_) => COLOCATED,
            Shape::Disaggregated { .. } => DISAGGREGATED,
        }
    }

    /// Every replica count multiplied by `copies`: `copies` such deployments
    /// behind one router per pool.
    pub fn times(self, copies: u32) -> Shape {
        let scale = |g: Group| Group {
            replicas: g.replicas.saturating_mul(copies),
            tp: g.tp,
        };
        match self {
            Shape::Colocated(g) => Shape::Colocated(scale(g)),
            Shape::Disaggregated { prefill, decode } => Shape::Disaggregated {
                prefill: scale(prefill),
                decode: scale(decode),
            },
        }
    }

    /// Reads `2xTP4` or `2xTP2 + 1xTP4` (prefill first; spaces and the case
    /// of `x` and `TP` are free).
    pub fn parse(text: &str) -> Result<Shape, String> {
        let group = |part: &str| -> Option<Group> {
            let part = part.trim().to_ascii_lowercase();
            let (replicas, tp) = part.split_once('x')?;
            let tp = tp.trim().strip_prefix("tp")?;
            let g = Group {
                replicas: replicas.trim().parse().ok()?,
                tp: tp.trim().parse().ok()?,
            };
            (g.replicas >= 1 && g.tp >= 1).then_some(g)
        };
        let bad = || {
            format!(
                "`{text}` is not a deployment shape: write `RxTPt` for R colocated replicas of \
                 t GPUs (e.g. \"2xTP4\") or `XxTPp + YxTPd` for X prefill replicas of p GPUs and \
                 Y decode replicas of d GPUs (e.g. \"2xTP2 + 1xTP4\")"
            )
        };
        let parts: Vec<&str> = text.split('+').collect();
        match parts.as_slice() {
            [one] => group(one).map(Shape::Colocated).ok_or_else(bad),
            [p, d] => match (group(p), group(d)) {
                (Some(prefill), Some(decode)) => Ok(Shape::Disaggregated { prefill, decode }),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }

    /// Sets this shape in scenario table `table`: a colocated one drops
    /// `[deployment]` and sets `hardware.tp` and `hardware.replicas`; a
    /// disaggregated one sets `deployment.mode` and each pool's
    /// `hardware.tp` and `hardware.replicas`, keeping the deployment's other
    /// keys (link, transfer, reservation, the pools' other tables).
    pub fn apply(self, table: &mut toml::Table) -> Result<(), String> {
        let int = |v: u32| toml::Value::Integer(i64::from(v));
        match self {
            Shape::Colocated(g) => {
                table.remove("deployment");
                apply_override(table, "hardware.tp", int(g.tp))?;
                apply_override(table, "hardware.replicas", int(g.replicas))
            }
            Shape::Disaggregated { prefill, decode } => {
                apply_override(
                    table,
                    "deployment.mode",
                    toml::Value::String(DISAGGREGATED.into()),
                )?;
                for (pool, g) in [("prefill", prefill), ("decode", decode)] {
                    apply_override(table, &format!("deployment.{pool}.hardware.tp"), int(g.tp))?;
                    apply_override(
                        table,
                        &format!("deployment.{pool}.hardware.replicas"),
                        int(g.replicas),
                    )?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shape::Colocated(g) => write!(f, "{g}"),
            Shape::Disaggregated { prefill, decode } => write!(f, "{prefill} + {decode}"),
        }
    }
}

/// Every deployment of exactly `gpus` GPUs with tensor-parallel degrees from
/// `tps`: the colocated ones (`gpus / t` replicas of each `t` that divides
/// `gpus`), then the disaggregated ones (`x` prefill replicas of `p` GPUs and
/// `y` decode replicas of `d`, `x p + y d = gpus`, `x, y >= 1`), by prefill
/// TP, decode TP and prefill replicas.
pub fn shapes_of(gpus: u32, tps: &[u32]) -> Vec<Shape> {
    let mut tps: Vec<u32> = tps.iter().copied().filter(|&t| t >= 1).collect();
    tps.sort_unstable();
    tps.dedup();
    let mut out: Vec<Shape> = tps
        .iter()
        .filter(|&&t| gpus % t == 0)
        .map(|&tp| {
            Shape::Colocated(Group {
                replicas: gpus / tp,
                tp,
            })
        })
        .collect();
    for &p in &tps {
        for &d in &tps {
            let mut x = 1;
            while x * p < gpus {
                let rest = gpus - x * p;
                if rest % d == 0 {
                    out.push(Shape::Disaggregated {
                        prefill: Group { replicas: x, tp: p },
                        decode: Group {
                            replicas: rest / d,
                            tp: d,
                        },
                    });
                }
                x += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_read_and_write_back() {
        for text in ["2xTP4", "2xTP2 + 1xTP4", "1xTP8", "3xTP1 + 5xTP1"] {
            assert_eq!(Shape::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            Shape::parse(" 2 x tp2+1XTP4 ").unwrap().to_string(),
            "2xTP2 + 1xTP4"
        );
        for bad in ["", "2xTP0", "0xTP2", "TP4", "2x4", "1xTP1 + 1xTP1 + 1xTP1"] {
            assert!(Shape::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn eight_gpus_split_every_way() {
        let all: Vec<String> = shapes_of(8, &[8, 2, 4, 2])
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            all,
            [
                "4xTP2",
                "2xTP4",
                "1xTP8",
                "1xTP2 + 3xTP2",
                "2xTP2 + 2xTP2",
                "3xTP2 + 1xTP2",
                "2xTP2 + 1xTP4",
                "1xTP4 + 2xTP2",
                "1xTP4 + 1xTP4",
            ]
        );
        assert!(shapes_of(8, &[2, 4, 8]).iter().all(|s| s.gpus() == 8));
        assert_eq!(shapes_of(1, &[1]).len(), 1);
    }

    #[test]
    fn a_shape_sets_the_pools_or_drops_them() {
        let mut t: toml::Table =
            "[deployment]\nmode = \"disaggregated\"\n[deployment.link]\ngbps = 50\n"
                .parse()
                .unwrap();
        Shape::parse("2xTP2 + 1xTP4")
            .unwrap()
            .times(3)
            .apply(&mut t)
            .unwrap();
        let text = toml::to_string(&t).unwrap();
        assert!(text.contains("gbps = 50"), "{text}");
        let p = &t["deployment"]["prefill"]["hardware"];
        let d = &t["deployment"]["decode"]["hardware"];
        assert_eq!(
            (p["replicas"].as_integer(), p["tp"].as_integer()),
            (Some(6), Some(2))
        );
        assert_eq!(
            (d["replicas"].as_integer(), d["tp"].as_integer()),
            (Some(3), Some(4))
        );
        Shape::parse("2xTP4").unwrap().apply(&mut t).unwrap();
        assert!(!t.contains_key("deployment"));
        assert_eq!(t["hardware"]["replicas"].as_integer(), Some(2));
    }
}
