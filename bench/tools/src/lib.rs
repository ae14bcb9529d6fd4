//! Shared helpers of the benchmark tools.

use events::video::{VideoMetadata, Visibility};

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

/// A seeded video's metadata: a topic's two words in one of the title shapes.
pub fn video_metadata(rng: &mut Rng) -> VideoMetadata {
    let (category, words) = rng.pick(TOPICS);
    let a = rng.pick(words);
    let b = rng.pick(words);
    let title = rng.pick(SHAPES).replace("{a}", a).replace("{b}", b);
    let title = title[..1].to_uppercase() + &title[1..];
    VideoMetadata {
        description: format!("A video about {a}, {b} and more {category}. Subscribe for more {b}!"),
        tags: vec![a.to_string(), category.to_string()],
        category: Some(category.to_string()),
        visibility: if rng.below(20) == 0 {
            Visibility::Unlisted
        } else {
            Visibility::Public
        },
        title,
    }
}

/// How many distinct queries (and prefixes) the search loads draw from.
pub const DISTINCT_QUERIES: usize = 1_000;

/// The seeded titles' own words (the shapes' fixed words).
pub fn title_words() -> Vec<String> {
    let mut words: Vec<String> = SHAPES
        .iter()
        .flat_map(|s| s.split(|c: char| !c.is_alphanumeric()))
        .filter(|w| w.len() >= 4 && !w.starts_with('{'))
        .map(str::to_lowercase)
        .collect();
    words.sort();
    words.dedup();
    words
}

/// 1,000 distinct two-word queries, in a fixed order (what search-load and search-index
/// send).
pub fn search_queries() -> Vec<String> {
    let mut all = Vec::new();
    for (_, words) in TOPICS {
        for a in *words {
            for b in *words {
                if a != b {
                    all.push(format!("{a} {b}"));
                }
            }
        }
    }
    let shape_words = title_words();
    for (_, words) in TOPICS {
        for a in *words {
            for w in &shape_words {
                all.push(format!("{a} {w}"));
            }
        }
    }
    shuffle_take(all, DISTINCT_QUERIES)
}

/// 1,000 distinct suggestion prefixes: what is typed on the way to each word, and some typos.
pub fn search_prefixes() -> Vec<String> {
    let mut words: Vec<String> = TOPICS
        .iter()
        .flat_map(|(topic, words)| std::iter::once(*topic).chain(words.iter().copied()))
        .map(str::to_owned)
        .chain(title_words())
        .collect();
    words.sort();
    words.dedup();
    let mut all = Vec::new();
    let mut rng = Rng::new(7);
    for word in &words {
        let chars: Vec<char> = word.chars().collect();
        for len in 1..=chars.len() {
            all.push(chars[..len].iter().collect::<String>());
            if len >= 5 && rng.below(4) == 0 {
                let mut typo = chars[..len].to_vec();
                let at = 1 + rng.below(len - 1);
                typo[at] = if typo[at] == 'x' { 'z' } else { 'x' };
                all.push(typo.into_iter().collect());
            }
        }
    }
    all.sort();
    all.dedup();
    shuffle_take(all, DISTINCT_QUERIES)
}

fn shuffle_take(mut all: Vec<String>, n: usize) -> Vec<String> {
    let mut rng = Rng::new(42);
    for i in (1..all.len()).rev() {
        all.swap(i, rng.below(i + 1));
    }
    all.truncate(n);
    all
}
