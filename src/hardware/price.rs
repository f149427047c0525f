//! What memory below HBM costs, USD per GB-hour: the defaults `kvsim plan`
//! prices tiers with (`[plan.prices]` overrides them) and the run summary's
//! cost per million output tokens uses.
//!
//! Host memory and local SSD are priced per GB-hour (GB = 1e9 bytes, as
//! `capacity_gb`), from Google Cloud's on-demand list prices in us-central1
//! as the Cloud Billing Catalog API reported them on 2026-08-20 (`pricing.yml`
//! of github.com/Cyclenerd/google-cloud-pricing-cost-calculator, generated
//! 2026-08-20 04:22 UTC, commit dac31281). Google bills both in binary
//! gigabytes (GiB), so each price is multiplied by 1e9 / 2^30 per GB:
//!
//! - Host memory: N2 memory, $0.004237 per GiB-hour. The file lists machine
//!   prices only; the memory rate is the difference between n2-highmem-80
//!   (80 vCPU, 640 GiB, $5.24056/h) and n2-standard-80 (80 vCPU, 320 GiB,
//!   $3.88472/h) over their 320 GiB: $1.35584 / 320 = $0.004237 per
//!   GiB-hour, i.e. $0.003946 per GB-hour. GPU machines come with a fixed
//!   amount of DRAM, so this is the price of DRAM as a cloud sells it by the
//!   gigabyte, not a quote for more of it in a GPU server (kvsim's choice).
//! - Local SSD: $0.08 per GiB-month (`compute.storage.local`, type
//!   `pd-local`), over 730 hours a month: $0.00010959 per GiB-hour, i.e.
//!   $0.00010206 per GB-hour.
//!
//! A remote tier (Mooncake Store pools the DRAM of the serving nodes) is
//! priced as host memory.

/// Bytes in one of the binary gigabytes cloud providers bill.
const GIB: f64 = 1_073_741_824.0;
/// Hours in a billing month (Google's and AWS's 730).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// Default USD per GB-hour of host memory: Google Cloud's N2 memory,
/// $0.004237 per GiB-hour (us-central1, on demand, 2026-08-20; see the
/// module documentation).
pub const HOST_GB_HOUR: f64 = 0.004237 * 1e9 / GIB;
/// Default USD per GB-hour of local SSD: Google Cloud's Local SSD, $0.08 per
/// GiB-month over 730 hours (us-central1, on demand, 2026-08-20).
pub const SSD_GB_HOUR: f64 = 0.08 / HOURS_PER_MONTH * 1e9 / GIB;
