//! Shared helpers of the benchmark tools.

/// A small, fast, seeded PRNG (xorshift64*): benchmarks must be reproducible, and this
/// is all the randomness they need.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Reads `name` from the environment, or `default`.
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// The seeded catalogue's vocabulary (seed-media), which the load generators query too.

/// Topics with their own words, so searches hit a realistic fraction of the catalogue.
pub const TOPICS: &[(&str, &[&str])] = &[
    (
        "cooking",
        &[
            "pasta",
            "bread",
            "sourdough",
            "curry",
            "vegan",
            "grill",
            "dessert",
            "soup",
            "knife",
            "spice",
        ],
    ),
    (
        "sports",
        &[
            "football",
            "tennis",
            "tactics",
            "training",
            "marathon",
            "cycling",
            "goals",
            "highlights",
            "coach",
            "match",
        ],
    ),
    (
        "programming",
        &[
            "rust",
            "python",
            "async",
            "database",
            "compiler",
            "kubernetes",
            "testing",
            "performance",
            "web",
            "tutorial",
        ],
    ),
    (
        "music",
        &[
            "guitar", "piano", "jazz", "drums", "synth", "chords", "concert", "vocal", "mixing",
            "beats",
        ],
    ),
    (
        "travel",
        &[
            "japan",
            "hiking",
            "island",
            "roadtrip",
            "budget",
            "mountains",
            "city",
            "camping",
            "train",
            "beach",
        ],
    ),
    (
        "gaming",
        &[
            "speedrun",
            "strategy",
            "retro",
            "boss",
            "multiplayer",
            "indie",
            "walkthrough",
            "mods",
            "arcade",
            "puzzle",
        ],
    ),
    (
        "science",
        &[
            "physics",
            "space",
            "biology",
            "chemistry",
            "climate",
            "quantum",
            "telescope",
            "evolution",
            "energy",
            "robots",
        ],
    ),
    (
        "fitness",
        &[
            "yoga",
            "strength",
            "running",
            "stretching",
            "mobility",
            "workout",
            "nutrition",
            "cardio",
            "recovery",
            "squats",
        ],
    ),
];
pub const SHAPES: &[&str] = &[
    "{a} {b} for beginners",
    "The best {a} {b}",
    "{a} and {b} explained",
    "My {a} {b} routine",
    "{a} {b} in 10 minutes",
    "Advanced {a}: {b}",
];
