//! [`Ctx`]: what a test body gets — its seed, a data directory and node addresses that
//! mean the same thing in both worlds, and the faults in force.

use sim_fs::FaultConfig;
use sim_net::NetFaultConfig;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The port every simulated node's [`Ctx::addr`] uses (each node has its own IP).
pub const SIM_PORT: u16 = 7000;

/// What a test body gets. Cheap to clone, `Send + Sync`: move clones into node tasks.
///
/// | | simulated world | real world |
/// |---|---|---|
/// | [`seed`](Ctx::seed) | the run's seed | sim-runtime's real-world seed (`SEEDBANK_SEED` or the OS) |
/// | [`data_dir`](Ctx::data_dir) | `/` on each node's own simulated disk | a fresh temporary directory, removed when the test passes |
/// | [`addr`](Ctx::addr)`(i)` | `10.10.x.y:7000`, one IP per `i` (give it to the node with `.ip(..)`) | `127.0.0.1:<free port>`, one port per `i` |
/// | faults | the test's fault configuration, applied before the body starts | none |
#[derive(Clone)]
pub struct Ctx {
    inner: Arc<Inner>,
}

struct Inner {
    seed: u64,
    simulated: bool,
    data_dir: PathBuf,
    fs_faults: Option<FaultConfig>,
    net_faults: Option<NetFaultConfig>,
    ports: Mutex<BTreeMap<u16, u16>>,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx")
            .field("seed", &self.inner.seed)
            .field("simulated", &self.inner.simulated)
            .field("data_dir", &self.inner.data_dir)
            .finish_non_exhaustive()
    }
}

impl Ctx {
    pub(crate) fn new(
        seed: u64,
        data_dir: PathBuf,
        fs_faults: Option<FaultConfig>,
        net_faults: Option<NetFaultConfig>,
    ) -> Self {
        Ctx {
            inner: Arc::new(Inner {
                seed,
                simulated: cfg!(madsim),
                data_dir,
                fs_faults,
                net_faults,
                ports: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// The seed of this run.
    pub fn seed(&self) -> u64 {
        self.inner.seed
    }

    /// Whether this is the simulated world.
    pub fn is_simulated(&self) -> bool {
        self.inner.simulated
    }

    /// The directory the test may put files in. It exists. In simulation it is `/` of
    /// whichever node's disk the calling task runs on (every node has its own disk);
    /// in the real world, one temporary directory shared by the whole test, so give
    /// each node its own subdirectory (`ctx.data_dir().join("node1")`).
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// The address of node `i` (`i >= 1`). Simulation: IP `10.10.(i/256).(i%256)`, port
    /// [`SIM_PORT`] — create node `i` with `.ip(ctx.addr(i).ip())`. Real world:
    /// `127.0.0.1` and a port that was free when first asked for (stable for the test).
    pub fn addr(&self, i: u16) -> SocketAddr {
        assert!(i >= 1, "node addresses start at 1");
        if self.inner.simulated {
            let [hi, lo] = i.to_be_bytes();
            SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 10, hi, lo)), SIM_PORT)
        } else {
            let mut ports = sim_runtime::sync::lock(&self.inner.ports);
            let port = *ports.entry(i).or_insert_with(free_port);
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
        }
    }

    /// The disk fault configuration in force (simulation; `None` in the real world or
    /// when the test injects no disk faults).
    pub fn fs_faults(&self) -> Option<&FaultConfig> {
        self.inner.fs_faults.as_ref()
    }

    /// The network fault configuration in force (simulation; `None` in the real world
    /// or when the test injects no network faults).
    pub fn net_faults(&self) -> Option<&NetFaultConfig> {
        self.inner.net_faults.as_ref()
    }

    /// Ends the injected faults, for a test's final "heal, then everything must
    /// converge" phase: network partitions and clogs are healed, network and disk
    /// fault rates drop to none (a later power loss still follows sim-fs's crash
    /// model; per-node disk overrides the test set stay). No-op in the real world.
    pub fn heal_all(&self) {
        #[cfg(madsim)]
        {
            sim_net::faults::heal();
            sim_net::faults::set_config(NetFaultConfig::none());
            sim_fs::sim::set_fault_config(FaultConfig::none());
        }
    }
}

#[cfg(not(madsim))]
fn free_port() -> u16 {
    // Real world only: ask the OS for a free loopback port. Racy in principle (another
    // process could take it before the test binds it), as every such helper is.
    #[allow(clippy::disallowed_methods)] // the real world's port allocator, not simulation code
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0));
    match listener.and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => panic!("seedbank: cannot find a free loopback port: {e}"),
    }
}

#[cfg(madsim)]
fn free_port() -> u16 {
    unreachable!("simulated addresses need no port allocation")
}
