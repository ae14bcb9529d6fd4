//! Search through the gateway, as a web client uses it: every filter and order with
//! cursors walked page by page, completions while typing (prefix, typos, channels, and
//! nothing the viewer may not see), and how soon the index follows an edit, a hide and a
//! delete. Word matching, typos and hostile input: crates/e2e/tests/media.rs.

use std::time::{Duration, Instant};

use e2e::Stack;
use events::{
    Envelope,
    interaction::{VideoCounts, ViewCounters},
    video::{VideoMetadata, Visibility},
};
use serde_json::{Value, json};
use testkit::wait_for;
use uuid::Uuid;

const PASSWORD: &str = "correct horse battery";

async fn user(stack: &Stack, name: &str) -> (Uuid, String) {
    let profile = stack.register(name, PASSWORD).await;
    let tokens = stack.login(name, PASSWORD).await;
    (
        profile["id"].as_str().unwrap().parse().unwrap(),
        tokens["access_token"].as_str().unwrap().to_owned(),
    )
}

fn metadata(title: &str, tags: &[&str], visibility: Visibility) -> VideoMetadata {
    VideoMetadata {
        title: title.into(),
        description: format!("All about {title}."),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        category: Some("cooking".into()),
        visibility,
    }
}

/// A video through its lifecycle with the given duration, waited for until ready.
async fn publish(
    stack: &Stack,
    owner: Uuid,
    token: &str,
    meta: VideoMetadata,
    seconds: f64,
) -> Uuid {
    let video_id = stack.publish_video_lasting(owner, meta, seconds).await;
    stack.wait_video_ready(Some(token), video_id).await;
    video_id
}

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

const SEARCH: &str = "query($q: String, $tags: [String!], $after: DateTime, $before: DateTime,
      $duration: DurationFilter, $sort: SearchSort, $first: Int, $cursor: String) {
    search(query: $q, tags: $tags, publishedAfter: $after, publishedBefore: $before,
           duration: $duration, sort: $sort, first: $first, after: $cursor) {
      edges { cursor node { id publishedAt } }
      pageInfo { hasNextPage endCursor }
    }
  }";

/// The ids of the whole result, walked `page` at a time through the cursors.
async fn walk(stack: &Stack, mut vars: Value, page: i64) -> Vec<Uuid> {
    vars["first"] = json!(page);
    let mut ids = Vec::new();
    for _ in 0..50 {
        let data = stack.graphql_ok(None, SEARCH, vars.clone()).await;
        let edges = data["search"]["edges"].as_array().unwrap();
        assert!(edges.len() <= page as usize, "{data}");
        ids.extend(
            edges
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap().parse::<Uuid>().unwrap()),
        );
        let info = &data["search"]["pageInfo"];
        if info["hasNextPage"] != true {
            return ids;
        }
        vars["cursor"] = info["endCursor"].clone();
    }
    panic!("more than 50 pages");
}

/// The whole result in one page.
async fn all(stack: &Stack, vars: Value) -> Vec<Uuid> {
    walk(stack, vars, 50).await
}

#[tokio::test]
async fn every_filter_and_order_pages_through_cursors() {
    let stack = Stack::start().await;
    let (owner, token) = user(&stack, "knifemaker").await;
    // The last two are never in anyone's results: the owner's private and unlisted knives.
    let mut knives = Vec::new();
    for (title, tags, visibility, seconds) in [
        ("Knife skills", &["knife"][..], Visibility::Public, 60.0),
        (
            "Knife sharpening",
            &["knife", "stone"],
            Visibility::Public,
            600.0,
        ),
        ("Knife forging", &["forge"], Visibility::Public, 3600.0),
        ("Knife secrets", &["knife"], Visibility::Private, 60.0),
        ("Knife unlisted", &["knife"], Visibility::Unlisted, 60.0),
    ] {
        let meta = metadata(title, tags, visibility);
        knives.push(publish(&stack, owner, &token, meta, seconds).await);
    }
    let (short, medium, long) = (knives[0], knives[1], knives[2]);

    let knife = json!({ "q": "knife" });
    wait_for("the knives searchable", Duration::from_secs(5), || async {
        (all(&stack, knife.clone()).await.len() == 3).then_some(())
    })
    .await;
    // Relevance: title, tag and description beat title and description; equal scores
    // go to the newest.
    assert_eq!(all(&stack, knife.clone()).await, [medium, short, long]);
    assert_eq!(walk(&stack, knife.clone(), 1).await, [medium, short, long]);

    // Duration ranges.
    for (range, expected) in [("SHORT", short), ("MEDIUM", medium), ("LONG", long)] {
        let vars = json!({ "q": "knife", "duration": range });
        assert_eq!(all(&stack, vars).await, [expected], "{range}");
    }
    // Publication dates, with and without words.
    let data = stack
        .graphql_ok(None, SEARCH, json!({ "q": "knife", "sort": "DATE" }))
        .await;
    let published = |i: usize| data["search"]["edges"][i]["node"]["publishedAt"].clone();
    let middle = published(1);
    assert_eq!(
        all(&stack, json!({ "after": middle, "sort": "DATE" })).await,
        [long, medium]
    );
    assert_eq!(
        all(&stack, json!({ "q": "knife", "before": middle })).await,
        [short]
    );
    let body = stack
        .graphql(
            None,
            SEARCH,
            json!({ "q": "knife", "after": middle, "before": middle }),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");
    let body = stack.graphql(None, SEARCH, json!({})).await;
    assert_eq!(code(&body), "BAD_USER_INPUT", "{body}");

    // Orders: date; likes; views (as the ranker reports them).
    let date = json!({ "q": "knife", "sort": "DATE" });
    assert_eq!(all(&stack, date.clone()).await, [long, medium, short]);
    assert_eq!(walk(&stack, date, 2).await, [long, medium, short]);

    let like = "mutation($v: ID!) { likeVideo(videoId: $v) { id } }";
    for (name, videos) in [("liker1", vec![medium, short]), ("liker2", vec![medium])] {
        let (_, liker) = user(&stack, name).await;
        for video in videos {
            stack
                .graphql_ok(Some(&liker), like, json!({ "v": video }))
                .await;
        }
    }
    let likes = json!({ "q": "knife", "sort": "LIKES" });
    assert_eq!(all(&stack, likes.clone()).await, [medium, short, long]);
    assert_eq!(walk(&stack, likes, 1).await, [medium, short, long]);

    report_views(&stack, &[(short, 5), (long, 2)]).await;
    let views = json!({ "q": "knife", "sort": "VIEWS" });
    wait_for("the views counted", Duration::from_secs(10), || async {
        (all(&stack, views.clone()).await == [short, long, medium]).then_some(())
    })
    .await;
    assert_eq!(walk(&stack, views, 1).await, [short, long, medium]);

    // Filters combine with words and each other.
    assert_eq!(
        all(
            &stack,
            json!({ "q": "knife", "tags": ["knife"], "duration": "MEDIUM" })
        )
        .await,
        [medium]
    );
    assert_eq!(all(&stack, json!({ "tags": ["forge"] })).await, [long]);
}

/// A counters report as the ranker sends one, into media's counters queue.
async fn report_views(stack: &Stack, views: &[(Uuid, i64)]) {
    let report = ViewCounters {
        videos: views
            .iter()
            .map(|&(video_id, views)| VideoCounts {
                video_id,
                views,
                watch_seconds: 0,
            })
            .collect(),
    };
    let rabbit = events::Rabbit::new(&stack.env.amqp_url, "e2e-search");
    let channel = rabbit.channel().await.unwrap();
    let queue = stack.media_config.queue("media.counters");
    queue.declare(&channel).await.unwrap();
    let payload = serde_json::to_vec(&Envelope::new(report)).unwrap();
    events::Publisher::new(rabbit)
        .publish_raw("", &queue.name, &Uuid::now_v7().to_string(), &payload)
        .await
        .unwrap();
}

const SUGGEST: &str = "query($p: String!, $n: Int) {
    searchSuggestions(prefix: $p, first: $n) { text kind channelId }
  }";

async fn suggest(stack: &Stack, prefix: &str) -> Vec<(String, String)> {
    let data = stack
        .graphql_ok(None, SUGGEST, json!({ "p": prefix, "n": 10 }))
        .await;
    data["searchSuggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["text"].as_str().unwrap().to_owned(),
                s["kind"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn has(found: &[(String, String)], text: &str, kind: &str) -> bool {
    found.iter().any(|(t, k)| t == text && k == kind)
}

#[tokio::test]
async fn suggestions_complete_titles_tags_and_channels_and_keep_secrets() {
    let stack = Stack::start().await;
    let (owner, token) = user(&stack, "zinniagardens").await;
    // The private one first: once the later ones are suggested, it has been seen.
    publish(
        &stack,
        owner,
        &token,
        metadata("Chrysalis secrets", &["hidden"], Visibility::Private),
        300.0,
    )
    .await;
    let flower = publish(
        &stack,
        owner,
        &token,
        metadata(
            "Chrysanthemum care guide",
            &["gardening"],
            Visibility::Public,
        ),
        300.0,
    )
    .await;
    publish(
        &stack,
        owner,
        &token,
        metadata("Chrome tips", &["browsers"], Visibility::Public),
        300.0,
    )
    .await;

    wait_for("suggestions rebuilt", Duration::from_secs(10), || async {
        let chr = suggest(&stack, "chr").await;
        (has(&chr, "Chrysanthemum care guide", "TITLE") && has(&chr, "Chrome tips", "TITLE"))
            .then_some(())
    })
    .await;
    let chr = suggest(&stack, "Chr").await;
    assert!(
        !chr.iter().any(|(t, _)| t.contains("Chrysalis")),
        "a private title is never suggested: {chr:?}"
    );
    assert!(
        suggest(&stack, "secr").await.is_empty(),
        "private words neither"
    );
    // Inside a title, a tag, a channel (with its id), a typo.
    assert!(has(
        &suggest(&stack, "care g").await,
        "Chrysanthemum care guide",
        "TITLE"
    ));
    assert!(has(&suggest(&stack, "garden").await, "gardening", "TAG"));
    let data = stack
        .graphql_ok(None, SUGGEST, json!({ "p": "zinnia", "n": 5 }))
        .await;
    let channel = &data["searchSuggestions"][0];
    assert_eq!(
        (&channel["text"], &channel["kind"], &channel["channelId"]),
        (
            &json!("zinniagardens"),
            &json!("CHANNEL"),
            &json!(owner.to_string())
        ),
        "{data}"
    );
    assert!(has(
        &suggest(&stack, "chrysantemum").await,
        "Chrysanthemum care guide",
        "TITLE"
    ));
    assert!(has(&suggest(&stack, "gardenimg").await, "gardening", "TAG"));
    assert!(
        suggest(&stack, "xhr").await.is_empty(),
        "no guessing from 3 characters"
    );

    // Made private: gone from completions and results at once (within a second).
    let hide = "mutation($id: ID!) { updateVideo(id: $id, input: { visibility: PRIVATE }) { id } }";
    stack
        .graphql_ok(Some(&token), hide, json!({ "id": flower }))
        .await;
    let hidden = Instant::now();
    wait_for("the hidden title gone", Duration::from_secs(5), || async {
        let gone = !has(
            &suggest(&stack, "chrys").await,
            "Chrysanthemum care guide",
            "TITLE",
        ) && all(&stack, json!({ "q": "chrysanthemum" }))
            .await
            .is_empty();
        gone.then_some(())
    })
    .await;
    eprintln!(
        "hidden from search and suggestions after {:?}",
        hidden.elapsed()
    );

    // Bad input: a clear BAD_USER_INPUT, never a 5xx.
    for (prefix, first) in [
        (String::new(), 10),
        ("  !! ".to_owned(), 10),
        ("x".repeat(101), 10),
        ("x".repeat(10_000), 10),
        ("ok".to_owned(), 0),
        ("ok".to_owned(), 21),
    ] {
        let body = stack
            .graphql(None, SUGGEST, json!({ "p": prefix, "n": first }))
            .await;
        assert_eq!(
            code(&body),
            "BAD_USER_INPUT",
            "{prefix:.20} {first}: {body}"
        );
    }
    for odd in ["\u{0}", "a\u{0}b", "ü", "🦀", "\"", "-", "or"] {
        let body = stack
            .graphql(None, SUGGEST, json!({ "p": odd, "n": 5 }))
            .await;
        assert!(
            body["data"]["searchSuggestions"].is_array() || code(&body) == "BAD_USER_INPUT",
            "{odd:?}: {body}"
        );
    }
}

#[tokio::test]
async fn the_index_follows_edits_hides_and_deletes_within_a_second() {
    let stack = Stack::start().await;
    let (owner, token) = user(&stack, "naturalist").await;
    let published_at = Instant::now();
    let meta = VideoMetadata {
        description: "A film.".into(),
        ..metadata("Quokka documentary", &["wildlife"], Visibility::Public)
    };
    let video = publish(&stack, owner, &token, meta, 900.0).await;
    let found = |q: &'static str| {
        let stack = &stack;
        async move { all(stack, json!({ "q": q })).await == [video] }
    };
    let within = |what: &'static str, q: &'static str, present: bool| {
        let found = &found;
        async move {
            let started = Instant::now();
            wait_for(what, Duration::from_secs(3), || async {
                (found(q).await == present).then_some(())
            })
            .await;
            eprintln!("{what}: {:?}", started.elapsed());
        }
    };
    within("new video findable", "quokka", true).await;
    eprintln!("(published and ready after {:?})", published_at.elapsed());

    let edit =
        "mutation($id: ID!, $t: String) { updateVideo(id: $id, input: { title: $t }) { id } }";
    stack
        .graphql_ok(
            Some(&token),
            edit,
            json!({ "id": video, "t": "Wombat documentary" }),
        )
        .await;
    within("edited title findable", "wombat", true).await;
    assert!(!found("quokka").await, "the old title is gone");

    let visibility = "mutation($id: ID!, $v: Visibility) { updateVideo(id: $id, input: { visibility: $v }) { id } }";
    stack
        .graphql_ok(
            Some(&token),
            visibility,
            json!({ "id": video, "v": "UNLISTED" }),
        )
        .await;
    within("unlisted video gone", "wombat", false).await;
    stack
        .graphql_ok(
            Some(&token),
            visibility,
            json!({ "id": video, "v": "PUBLIC" }),
        )
        .await;
    within("public again", "wombat", true).await;

    let delete = "mutation($id: ID!) { deleteVideo(id: $id) }";
    stack
        .graphql_ok(Some(&token), delete, json!({ "id": video }))
        .await;
    within("deleted video gone", "wombat", false).await;
}
