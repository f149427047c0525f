//! `kvsim sweep --shard auto`: a process's shard from the job array that
//! started it.
//!
//! [`Shard::from_env`] reads the variables through a lookup function, so it
//! stays pure and testable; the command line passes one over the process
//! environment. What is accepted:
//!
//! - **Slurm job array** (`SLURM_ARRAY_TASK_ID` set): the count is
//!   `SLURM_ARRAY_TASK_COUNT` (required); the index is `SLURM_ARRAY_TASK_ID`
//!   minus `SLURM_ARRAY_TASK_MIN` (0 when unset), so `--array=0-7` and
//!   `--array=1-8` both give shards 0..8. The ids must be one contiguous
//!   range: `SLURM_ARRAY_TASK_STEP`, when set, must be 1, and
//!   `SLURM_ARRAY_TASK_MAX`, when set, must be `MIN + COUNT - 1` (a list such
//!   as `--array=0,2,5` has gaps). An id outside `MIN..=MAX` is refused.
//! - **Kubernetes Indexed Job** (`JOB_COMPLETION_INDEX` set): the index is
//!   `JOB_COMPLETION_INDEX`; the count must be given (`--shard auto/N`, N the
//!   Job's `spec.completions`), as no variable in the pod carries it.
//!
//! A count given with `auto/N` inside a Slurm array must equal
//! `SLURM_ARRAY_TASK_COUNT` (a check, not an override). Both families set, or
//! neither, is refused. A variable set to the empty string counts as unset.
//! Numbers are decimal, surrounding whitespace ignored.

use super::Shard;

/// The Slurm array task's id (`sbatch --array`).
pub const SLURM_TASK_ID: &str = "SLURM_ARRAY_TASK_ID";
/// The number of tasks of the Slurm array.
pub const SLURM_TASK_COUNT: &str = "SLURM_ARRAY_TASK_COUNT";
/// The lowest task id of the Slurm array.
pub const SLURM_TASK_MIN: &str = "SLURM_ARRAY_TASK_MIN";
/// The highest task id of the Slurm array.
pub const SLURM_TASK_MAX: &str = "SLURM_ARRAY_TASK_MAX";
/// The step between the Slurm array's task ids (`--array=0-15:4` has 4).
pub const SLURM_TASK_STEP: &str = "SLURM_ARRAY_TASK_STEP";
/// Set in every Slurm job, array task or not (used only in a hint).
pub const SLURM_JOB_ID: &str = "SLURM_JOB_ID";
/// The 0-based index of a pod of a Kubernetes Indexed Job.
pub const K8S_COMPLETION_INDEX: &str = "JOB_COMPLETION_INDEX";

/// A shard read from a job array's environment, with where it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvShard {
    /// The shard.
    pub shard: Shard,
    /// The variables it was read from, e.g. `SLURM_ARRAY_TASK_ID=5,
    /// SLURM_ARRAY_TASK_MIN=4, SLURM_ARRAY_TASK_COUNT=8`.
    pub source: String,
}

impl Shard {
    /// This process's shard in the Slurm job array or Kubernetes Indexed Job
    /// that started it (see the [module documentation](self) for the rules),
    /// reading variables through `var` (`None` when unset). `count` is the
    /// `N` of `--shard auto/N`: required with Kubernetes, checked against
    /// Slurm's. Errors name the variable and the reason.
    pub fn from_env(
        count: Option<usize>,
        var: &dyn Fn(&str) -> Option<String>,
    ) -> Result<EnvShard, String> {
        let flag = match count {
            Some(n) => format!("--shard auto/{n}"),
            None => "--shard auto".to_string(),
        };
        let err = |reason: String| format!("{flag}: {reason}");
        if count == Some(0) {
            return Err(err("the shard count must be at least 1".into()));
        }
        let get = |name: &str| var(name).filter(|v| !v.is_empty());
        match (get(SLURM_TASK_ID), get(K8S_COMPLETION_INDEX)) {
            (Some(id), Some(index)) => Err(err(format!(
                "both {SLURM_TASK_ID}={id} (a Slurm job array) and \
                 {K8S_COMPLETION_INDEX}={index} (a Kubernetes Indexed Job) are set, so \
                 which array this process belongs to is ambiguous; unset the other one \
                 (env -u NAME kvsim ...) or give the shard as --shard I/N"
            ))),
            (Some(id), None) => slurm(&id, count, &get).map_err(err),
            (None, Some(index)) => kubernetes(&index, count).map_err(err),
            (None, None) => {
                let hint = match get(SLURM_JOB_ID) {
                    Some(job) => format!(
                        " ({SLURM_JOB_ID}={job} is set: a Slurm job, but not a task of a job \
                         array; submit it with sbatch --array=0-<N-1>)"
                    ),
                    None => String::new(),
                };
                Err(err(format!(
                    "neither {SLURM_TASK_ID} (a Slurm job array) nor {K8S_COMPLETION_INDEX} \
                     (a Kubernetes Indexed Job) is set{hint}; run it as a task of one, or \
                     give the shard as --shard I/N"
                )))
            }
        }
    }
}

/// `value` of variable `name` as a non-negative integer.
fn number(name: &str, value: &str) -> Result<usize, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{name}=`{value}` is not a non-negative integer"))
}

fn slurm(
    id: &str,
    count: Option<usize>,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<EnvShard, String> {
    let id = number(SLURM_TASK_ID, id)?;
    let n = get(SLURM_TASK_COUNT).ok_or_else(|| {
        format!(
            "{SLURM_TASK_ID} is set but {SLURM_TASK_COUNT} is not: the shard count of a \
             Slurm job array comes from it (Slurm sets both in every array task)"
        )
    })?;
    let n = number(SLURM_TASK_COUNT, &n)?;
    if n == 0 {
        return Err(format!(
            "{SLURM_TASK_COUNT}=0: a job array has at least one task"
        ));
    }
    if let Some(step) = get(SLURM_TASK_STEP) {
        let step = number(SLURM_TASK_STEP, &step)?;
        if step != 1 {
            return Err(format!(
                "{SLURM_TASK_STEP}={step}: the array's task ids have gaps (sbatch \
                 --array=A-B:{step}); shards need consecutive ids: submit --array=0-{}",
                n - 1
            ));
        }
    }
    // MIN as read (None when unset: the array then starts at 0).
    let min_var = get(SLURM_TASK_MIN)
        .map(|m| number(SLURM_TASK_MIN, &m))
        .transpose()?;
    let min = min_var.unwrap_or(0);
    let min_text = match min_var {
        Some(min) => format!("{SLURM_TASK_MIN}={min}"),
        None => format!("{SLURM_TASK_MIN} unset (so 0)"),
    };
    let last = min
        .checked_add(n - 1)
        .ok_or_else(|| format!("{SLURM_TASK_MIN}={min} with {SLURM_TASK_COUNT}={n} overflows"))?;
    if let Some(max) = get(SLURM_TASK_MAX) {
        let max = number(SLURM_TASK_MAX, &max)?;
        if max != last {
            return Err(format!(
                "{min_text}, {SLURM_TASK_MAX}={max} and {SLURM_TASK_COUNT}={n} are not one \
                 range of consecutive ids (a list such as --array=0,2,5 has gaps); submit \
                 --array=0-{}",
                n - 1
            ));
        }
    }
    if id < min || id > last {
        return Err(format!(
            "{SLURM_TASK_ID}={id} is outside the array's ids {min}..={last} \
             ({min_text}, {SLURM_TASK_COUNT}={n})"
        ));
    }
    if let Some(given) = count.filter(|&given| given != n) {
        return Err(format!(
            "{SLURM_TASK_COUNT}={n}: the Slurm array has {n} tasks, not {given}; give \
             --shard auto to take the count from Slurm, or submit --array=0-{}",
            given - 1
        ));
    }
    let source = if min_var.is_some() {
        format!("{SLURM_TASK_ID}={id}, {min_text}, {SLURM_TASK_COUNT}={n}")
    } else {
        format!("{SLURM_TASK_ID}={id}, {SLURM_TASK_COUNT}={n}")
    };
    Ok(EnvShard {
        shard: Shard {
            index: id - min,
            count: n,
        },
        source,
    })
}

fn kubernetes(index: &str, count: Option<usize>) -> Result<EnvShard, String> {
    let index = number(K8S_COMPLETION_INDEX, index)?;
    let Some(n) = count else {
        return Err(format!(
            "{K8S_COMPLETION_INDEX}={index} is set (a Kubernetes Indexed Job), but the \
             number of shards is not visible to a pod: give it as --shard auto/N, N the \
             Job's spec.completions"
        ));
    };
    if index >= n {
        return Err(format!(
            "{K8S_COMPLETION_INDEX}={index} is not below the shard count {n} (completion \
             indexes run from 0 to N-1: is N the Job's spec.completions?)"
        ));
    }
    Ok(EnvShard {
        shard: Shard { index, count: n },
        source: format!("{K8S_COMPLETION_INDEX}={index} of {n}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`Shard::from_env`] over the variables `vars` (`NAME=value`).
    fn from(count: Option<usize>, vars: &[&str]) -> Result<EnvShard, String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|v| {
                let (k, v) = v.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect();
        let lookup = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        Shard::from_env(count, &lookup)
    }

    fn shard(count: Option<usize>, vars: &[&str]) -> (usize, usize) {
        let s = from(count, vars).unwrap_or_else(|e| panic!("{vars:?}: {e}"));
        (s.shard.index, s.shard.count)
    }

    /// The error, checked to contain each of `wants`.
    fn refused(count: Option<usize>, vars: &[&str], wants: &[&str]) -> String {
        let e = from(count, vars).expect_err(&format!("{vars:?} accepted"));
        for w in wants {
            assert!(e.contains(w), "no `{w}` in: {e}");
        }
        e
    }

    /// What `sbatch --array=MIN-MAX` sets in task `id`.
    fn slurm_task(id: usize, min: usize, max: usize) -> Vec<String> {
        vec![
            format!("SLURM_JOB_ID={}", 100 + id),
            format!("SLURM_ARRAY_JOB_ID=100"),
            format!("SLURM_ARRAY_TASK_ID={id}"),
            format!("SLURM_ARRAY_TASK_COUNT={}", max - min + 1),
            format!("SLURM_ARRAY_TASK_MIN={min}"),
            format!("SLURM_ARRAY_TASK_MAX={max}"),
            "SLURM_ARRAY_TASK_STEP=1".to_string(),
        ]
    }

    fn refs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }

    #[test]
    fn a_slurm_array_from_zero_gives_each_task_its_id() {
        for id in 0..4 {
            assert_eq!(shard(None, &refs(&slurm_task(id, 0, 3))), (id, 4));
            // auto/N checks the count.
            assert_eq!(shard(Some(4), &refs(&slurm_task(id, 0, 3))), (id, 4));
        }
        let s = from(None, &refs(&slurm_task(2, 0, 3))).unwrap();
        assert_eq!(
            s.source,
            "SLURM_ARRAY_TASK_ID=2, SLURM_ARRAY_TASK_MIN=0, SLURM_ARRAY_TASK_COUNT=4"
        );
        // A one-task array.
        assert_eq!(shard(None, &refs(&slurm_task(0, 0, 0))), (0, 1));
    }

    #[test]
    fn a_slurm_array_from_min_counts_from_min() {
        // --array=1-8: tasks 1..=8 are shards 0..8.
        let got: Vec<_> = (1..=8)
            .map(|id| shard(None, &refs(&slurm_task(id, 1, 8))))
            .collect();
        assert_eq!(got, (0..8).map(|i| (i, 8)).collect::<Vec<_>>());
        assert_eq!(shard(None, &refs(&slurm_task(103, 100, 103))), (3, 4));
        // --array=7: one task.
        assert_eq!(shard(None, &refs(&slurm_task(7, 7, 7))), (0, 1));
    }

    #[test]
    fn slurm_needs_only_the_id_and_the_count() {
        // Without MIN, MAX and STEP: an array from 0.
        let vars = ["SLURM_ARRAY_TASK_ID=3", "SLURM_ARRAY_TASK_COUNT=5"];
        assert_eq!(shard(None, &vars), (3, 5));
        assert_eq!(
            from(None, &vars).unwrap().source,
            "SLURM_ARRAY_TASK_ID=3, SLURM_ARRAY_TASK_COUNT=5"
        );
        // With MIN alone.
        let vars = [
            "SLURM_ARRAY_TASK_ID=12",
            "SLURM_ARRAY_TASK_COUNT=5",
            "SLURM_ARRAY_TASK_MIN=10",
        ];
        assert_eq!(shard(None, &vars), (2, 5));
        // Whitespace around a number is ignored; an empty variable is unset.
        let vars = [
            "SLURM_ARRAY_TASK_ID= 1\n",
            "SLURM_ARRAY_TASK_COUNT=2",
            "SLURM_ARRAY_TASK_STEP=",
            "JOB_COMPLETION_INDEX=",
        ];
        assert_eq!(shard(None, &vars), (1, 2));
    }

    #[test]
    fn slurm_errors_name_the_variable_and_the_reason() {
        refused(
            None,
            &["SLURM_ARRAY_TASK_ID=1"],
            &[
                "--shard auto: ",
                "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not",
            ],
        );
        refused(
            None,
            &["SLURM_ARRAY_TASK_ID=x1", "SLURM_ARRAY_TASK_COUNT=4"],
            &["SLURM_ARRAY_TASK_ID=`x1` is not a non-negative integer"],
        );
        refused(
            None,
            &["SLURM_ARRAY_TASK_ID=-1", "SLURM_ARRAY_TASK_COUNT=4"],
            &["SLURM_ARRAY_TASK_ID=`-1` is not a non-negative integer"],
        );
        refused(
            None,
            &["SLURM_ARRAY_TASK_ID=1", "SLURM_ARRAY_TASK_COUNT=four"],
            &["SLURM_ARRAY_TASK_COUNT=`four` is not a non-negative integer"],
        );
        refused(
            None,
            &["SLURM_ARRAY_TASK_ID=0", "SLURM_ARRAY_TASK_COUNT=0"],
            &["SLURM_ARRAY_TASK_COUNT=0: a job array has at least one task"],
        );
        for name in [
            "SLURM_ARRAY_TASK_MIN",
            "SLURM_ARRAY_TASK_MAX",
            "SLURM_ARRAY_TASK_STEP",
        ] {
            let bad = format!("{name}=1.5");
            refused(
                None,
                &["SLURM_ARRAY_TASK_ID=1", "SLURM_ARRAY_TASK_COUNT=4", &bad],
                &[&format!("{name}=`1.5` is not a non-negative integer")],
            );
        }
    }

    #[test]
    fn slurm_arrays_with_gaps_are_refused() {
        // --array=0-6:2: ids 0, 2, 4, 6.
        let mut task = slurm_task(2, 0, 6);
        task[3] = "SLURM_ARRAY_TASK_COUNT=4".into();
        task[6] = "SLURM_ARRAY_TASK_STEP=2".into();
        refused(
            None,
            &refs(&task),
            &[
                "SLURM_ARRAY_TASK_STEP=2: the array's task ids have gaps",
                "--array=0-3",
            ],
        );
        // A step of 0 is no step of 1 either.
        let mut task = slurm_task(0, 0, 0);
        task[6] = "SLURM_ARRAY_TASK_STEP=0".into();
        refused(None, &refs(&task), &["SLURM_ARRAY_TASK_STEP=0"]);
        // --array=0,2,5: three ids over 0..=5.
        let mut task = slurm_task(5, 0, 5);
        task[3] = "SLURM_ARRAY_TASK_COUNT=3".into();
        refused(
            None,
            &refs(&task),
            &[
                "SLURM_ARRAY_TASK_MIN=0, SLURM_ARRAY_TASK_MAX=5 and SLURM_ARRAY_TASK_COUNT=3 \
                 are not one range of consecutive ids",
                "--array=0-2",
            ],
        );
        // MAX without MIN: the range starts at 0.
        refused(
            None,
            &[
                "SLURM_ARRAY_TASK_ID=1",
                "SLURM_ARRAY_TASK_COUNT=2",
                "SLURM_ARRAY_TASK_MAX=2",
            ],
            &["SLURM_ARRAY_TASK_MIN unset (so 0), SLURM_ARRAY_TASK_MAX=2"],
        );
    }

    #[test]
    fn slurm_ids_outside_the_array_are_refused() {
        let mut task = slurm_task(4, 4, 7);
        task[2] = "SLURM_ARRAY_TASK_ID=3".into();
        refused(
            None,
            &refs(&task),
            &["SLURM_ARRAY_TASK_ID=3 is outside the array's ids 4..=7 \
                 (SLURM_ARRAY_TASK_MIN=4, SLURM_ARRAY_TASK_COUNT=4)"],
        );
        task[2] = "SLURM_ARRAY_TASK_ID=8".into();
        refused(None, &refs(&task), &["SLURM_ARRAY_TASK_ID=8 is outside"]);
        refused(
            None,
            &["SLURM_ARRAY_TASK_ID=4", "SLURM_ARRAY_TASK_COUNT=4"],
            &["SLURM_ARRAY_TASK_ID=4 is outside the array's ids 0..=3 \
                 (SLURM_ARRAY_TASK_MIN unset (so 0), SLURM_ARRAY_TASK_COUNT=4)"],
        );
        refused(
            None,
            &[
                "SLURM_ARRAY_TASK_ID=0",
                "SLURM_ARRAY_TASK_COUNT=2",
                &format!("SLURM_ARRAY_TASK_MIN={}", usize::MAX),
            ],
            &["overflows"],
        );
    }

    #[test]
    fn a_count_given_with_slurm_must_be_slurms() {
        refused(
            Some(8),
            &refs(&slurm_task(1, 0, 3)),
            &[
                "--shard auto/8: SLURM_ARRAY_TASK_COUNT=4: the Slurm array has 4 tasks, not 8",
                "--array=0-7",
            ],
        );
    }

    #[test]
    fn a_kubernetes_indexed_job_needs_its_count_given() {
        for i in 0..3 {
            let index = format!("JOB_COMPLETION_INDEX={i}");
            assert_eq!(shard(Some(3), &[&index]), (i, 3));
        }
        assert_eq!(
            from(Some(3), &["JOB_COMPLETION_INDEX=2"]).unwrap().source,
            "JOB_COMPLETION_INDEX=2 of 3"
        );
        refused(
            None,
            &["JOB_COMPLETION_INDEX=2"],
            &[
                "--shard auto: JOB_COMPLETION_INDEX=2 is set (a Kubernetes Indexed Job)",
                "give it as --shard auto/N",
            ],
        );
        refused(
            Some(3),
            &["JOB_COMPLETION_INDEX=3"],
            &["--shard auto/3: JOB_COMPLETION_INDEX=3 is not below the shard count 3"],
        );
        refused(
            Some(3),
            &["JOB_COMPLETION_INDEX=one"],
            &["JOB_COMPLETION_INDEX=`one` is not a non-negative integer"],
        );
        refused(
            Some(0),
            &["JOB_COMPLETION_INDEX=0"],
            &["--shard auto/0: the shard count must be at least 1"],
        );
    }

    #[test]
    fn neither_or_both_are_refused() {
        let e = refused(
            None,
            &[],
            &[
                "--shard auto: neither SLURM_ARRAY_TASK_ID (a Slurm job array) nor \
                 JOB_COMPLETION_INDEX (a Kubernetes Indexed Job) is set",
                "--shard I/N",
            ],
        );
        assert!(!e.contains("SLURM_JOB_ID"), "{e}");
        // A Slurm job that is not an array task.
        refused(
            Some(4),
            &["SLURM_JOB_ID=77"],
            &[
                "--shard auto/4: neither",
                "SLURM_JOB_ID=77 is set: a Slurm job, but not a task of a job array",
                "sbatch --array=0-<N-1>",
            ],
        );
        // Slurm's count without its id is no array task either.
        refused(None, &["SLURM_ARRAY_TASK_COUNT=4"], &["neither"]);
        let mut both = slurm_task(1, 0, 3);
        both.push("JOB_COMPLETION_INDEX=1".into());
        refused(
            Some(4),
            &refs(&both),
            &[
                "both SLURM_ARRAY_TASK_ID=1 (a Slurm job array) and JOB_COMPLETION_INDEX=1 \
                 (a Kubernetes Indexed Job) are set",
                "env -u NAME",
            ],
        );
    }
}
