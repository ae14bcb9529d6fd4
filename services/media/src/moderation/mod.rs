//! Trust and safety: reports, the moderators' queue and decisions, and the audit log.
//!
//! * **Reports** ([`ModerationMutation::report`]): any signed-in user reports a video, a
//!   comment or a user, with a reason from [`ReportReason`] and free text. One open report
//!   per reporter and target: reporting again returns the open report unchanged.
//! * **The queue** ([`ModerationQuery::moderation_queue`], moderators only): reports by
//!   state (open, resolved, dismissed), oldest first, filtered by kind of target and
//!   reason.
//! * **Decisions** (moderators only), each one transaction with its audit-log entry and
//!   the closing of the target's open reports as resolved:
//!   - `hideVideo` / `unhideVideo`: a hidden video is unlisted and unplayable for
//!     everyone but its owner, who reads the reason on `Video.hidden`. Media leaves it out
//!     of every list and lookup (the catalogue's `LISTED` and `VideoRow::visible_to`),
//!     ends its live subscriptions, and announces `moderation.video` through the outbox:
//!     the video service then answers 404 for its HLS tree, poster and captions.
//!   - `removeComment`: deletes a comment as its author could.
//!   - `banUser` / `unbanUser`: the user's videos are withheld like hidden ones
//!     (`owner_banned_at`, in the same transaction), `moderation.user` is announced
//!     through the outbox, and each service enforces its part of the ban from it: auth
//!     refuses the account's logins and denies every live token (their next request is
//!     401), the video service stops serving the account's videos, and media's own
//!     consumer ([`events`]) hides the account's comments and closes its WebSockets on
//!     every replica.
//!   - `dismissReport`: closes one report as dismissed, changing nothing else.
//! * **The audit log** ([`ModerationQuery::moderation_log`], admins only): who did what to
//!   what, when and why; append-only in the database itself (a trigger refuses UPDATE,
//!   DELETE and TRUNCATE), so not even this service can edit it.
//!
//! Roles come from auth alone: the gateway's `X-User-Roles` (from the token's claims;
//! clients' copies are stripped) or the WebSocket token's claims (crate::viewer::Staff).
//! Bans and hides are decisions of media's: they live where the queue and the log are,
//! and other services follow the events (events::moderation) rather than a second copy
//! of the queue.

pub mod events;
pub mod store;

use ::events::{
    Envelope,
    moderation::{UserModerated, VideoModerated},
    outbox,
};
use async_graphql::{
    Context, Enum, ID, InputObject, Object, Result, SimpleObject, connection::Connection,
};
use time::OffsetDateTime;
use uuid::Uuid;

use self::store::{Entry, LogRow, ReportRow};
use crate::{
    catalogue::{Video, parse_id, store as videos},
    comments::{self, id::CommentId},
    context::{AppContext, count_query, staff, viewer},
    cursor::{Cursor, Page},
    error::Error,
    notifications::{self, Kind, NewNotification},
    realtime::wire,
    users::User,
    viewer::Staff,
};

/// The longest reason or details text accepted.
const MAX_TEXT: usize = 2_000;

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReportTargetKind {
    Video,
    Comment,
    User,
}

impl ReportTargetKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Video => "video",
            Self::Comment => "comment",
            Self::User => "user",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [Self::Video, Self::Comment, Self::User]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// Why something is reported.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReportReason {
    Spam,
    Harassment,
    HateSpeech,
    Violence,
    SexualContent,
    ChildSafety,
    Copyright,
    Misinformation,
    Impersonation,
    Other,
}

impl ReportReason {
    const ALL: [Self; 10] = [
        Self::Spam,
        Self::Harassment,
        Self::HateSpeech,
        Self::Violence,
        Self::SexualContent,
        Self::ChildSafety,
        Self::Copyright,
        Self::Misinformation,
        Self::Impersonation,
        Self::Other,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::Spam => "spam",
            Self::Harassment => "harassment",
            Self::HateSpeech => "hate_speech",
            Self::Violence => "violence",
            Self::SexualContent => "sexual_content",
            Self::ChildSafety => "child_safety",
            Self::Copyright => "copyright",
            Self::Misinformation => "misinformation",
            Self::Impersonation => "impersonation",
            Self::Other => "other",
        }
    }

    fn parse(s: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .unwrap_or(Self::Other)
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReportState {
    Open,
    Resolved,
    Dismissed,
}

impl ReportState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Resolved => "resolved",
            Self::Dismissed => "dismissed",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "resolved" => Self::Resolved,
            "dismissed" => Self::Dismissed,
            _ => Self::Open,
        }
    }
}

/// What a moderator did (the audit log's `action`).
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ModerationActionKind {
    HideVideo,
    UnhideVideo,
    RemoveComment,
    BanUser,
    UnbanUser,
    DismissReport,
}

impl ModerationActionKind {
    const ALL: [Self; 6] = [
        Self::HideVideo,
        Self::UnhideVideo,
        Self::RemoveComment,
        Self::BanUser,
        Self::UnbanUser,
        Self::DismissReport,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::HideVideo => "hide_video",
            Self::UnhideVideo => "unhide_video",
            Self::RemoveComment => "remove_comment",
            Self::BanUser => "ban_user",
            Self::UnbanUser => "unban_user",
            Self::DismissReport => "dismiss_report",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

#[derive(InputObject)]
pub struct ReportInput {
    pub target_kind: ReportTargetKind,
    /// The video's, comment's or user's id.
    pub target_id: ID,
    pub reason: ReportReason,
    /// What the reporter wants moderators to know (up to 2,000 characters).
    pub details: Option<String>,
}

/// A report, as its reporter and moderators see it.
pub struct Report(ReportRow);

#[Object]
impl Report {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn target_kind(&self) -> ReportTargetKind {
        ReportTargetKind::parse(&self.0.target_kind).unwrap_or(ReportTargetKind::Video)
    }

    async fn target_id(&self) -> ID {
        ID(self.0.target_id.clone())
    }

    async fn reason(&self) -> ReportReason {
        ReportReason::parse(&self.0.reason)
    }

    async fn details(&self) -> &str {
        &self.0.details
    }

    async fn state(&self) -> ReportState {
        ReportState::parse(&self.0.state)
    }

    async fn created_at(&self) -> OffsetDateTime {
        self.0.created_at
    }

    async fn closed_at(&self) -> Option<OffsetDateTime> {
        self.0.closed_at
    }

    /// Who reported it (moderators only; null for anyone else).
    async fn reporter(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        if !staff(ctx).may_moderate() {
            return Ok(None);
        }
        AppContext::get(ctx)
            .users
            .load_one(self.0.reporter_id)
            .await
    }

    /// The reported video, whatever its state (moderators only).
    async fn video(&self, ctx: &Context<'_>) -> Result<Option<Video>> {
        if !staff(ctx).may_moderate() || self.0.target_kind != "video" {
            return Ok(None);
        }
        let Ok(id) = Uuid::parse_str(&self.0.target_id) else {
            return Ok(None);
        };
        let app = AppContext::get(ctx);
        Ok(videos::get(app.db.pool(), id)
            .await
            .map_err(Error::from)?
            .filter(|v| v.deleted_at.is_none())
            .map(Video::from))
    }

    /// The reported comment's text and author, as posted (moderators only).
    async fn comment(&self, ctx: &Context<'_>) -> Result<Option<comments::graphql::Comment>> {
        if !staff(ctx).may_moderate() || self.0.target_kind != "comment" {
            return Ok(None);
        }
        let Ok(id) = CommentId::parse(&ID(self.0.target_id.clone())) else {
            return Ok(None);
        };
        let app = AppContext::get(ctx);
        Ok(app
            .comments
            .get(id)
            .await
            .map_err(Error::from)?
            .map(comments::graphql::Comment))
    }

    /// The reported user (moderators only).
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        if !staff(ctx).may_moderate() || self.0.target_kind != "user" {
            return Ok(None);
        }
        let Ok(id) = Uuid::parse_str(&self.0.target_id) else {
            return Ok(None);
        };
        AppContext::get(ctx).users.load_one(id).await
    }
}

/// An entry of the audit log.
pub struct ModerationAction(LogRow);

#[Object]
impl ModerationAction {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn at(&self) -> OffsetDateTime {
        self.0.at
    }

    async fn moderator_id(&self) -> ID {
        ID(self.0.moderator_id.to_string())
    }

    async fn moderator(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        AppContext::get(ctx)
            .users
            .load_one(self.0.moderator_id)
            .await
    }

    async fn action(&self) -> Option<ModerationActionKind> {
        ModerationActionKind::parse(&self.0.action)
    }

    async fn target_kind(&self) -> Option<ReportTargetKind> {
        ReportTargetKind::parse(&self.0.target_kind)
    }

    async fn target_id(&self) -> ID {
        ID(self.0.target_id.clone())
    }

    async fn reason(&self) -> &str {
        &self.0.reason
    }

    /// The report that prompted it, if one did.
    async fn report_id(&self) -> Option<ID> {
        self.0.report_id.map(|id| ID(id.to_string()))
    }
}

/// Why a video is hidden: shown to its owner (and moderators) only.
#[derive(SimpleObject, Clone, Debug)]
pub struct HiddenNotice {
    pub hidden_at: OffsetDateTime,
    pub reason: String,
}

#[derive(Default)]
pub struct ModerationQuery;

#[Object]
impl ModerationQuery {
    /// Reports to work through (moderators only), oldest first.
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn moderation_queue(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "ReportState::Open")] state: ReportState,
        target_kind: Option<ReportTargetKind>,
        reason: Option<ReportReason>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, Report>> {
        viewer(ctx).require()?;
        staff(ctx).require_moderator()?;
        let app = AppContext::get(ctx);
        let page = Page::parse(first, after, app.config.limits.max_page)?;
        count_query("postgres", "moderation_queue");
        let rows = store::queue(
            app.db.pool(),
            state.as_str(),
            target_kind.map(ReportTargetKind::as_str),
            reason.map(ReportReason::as_str),
            page,
        )
        .await
        .map_err(Error::from)?;
        let items = rows.into_iter().map(Report).collect();
        Ok(page.connection(items, |r: &Report| Cursor::new(r.0.created_at, r.0.id)))
    }

    /// Every moderation decision, newest first (admins only).
    #[graphql(complexity = "first.unwrap_or(20).max(0) as usize * child_complexity")]
    async fn moderation_log(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Connection<Cursor, ModerationAction>> {
        viewer(ctx).require()?;
        staff(ctx).require_admin()?;
        let app = AppContext::get(ctx);
        let page = Page::parse(first, after, app.config.limits.max_page)?;
        let rows = store::log_page(app.db.pool(), page)
            .await
            .map_err(Error::from)?;
        let items = rows.into_iter().map(ModerationAction).collect();
        Ok(page.connection(items, |a: &ModerationAction| Cursor::new(a.0.at, a.0.id)))
    }
}

#[derive(Default)]
pub struct ModerationMutation;

#[Object]
impl ModerationMutation {
    /// Reports a video, a comment or a user to the moderators. Reporting the same target
    /// again while the first report is open returns that report, unchanged.
    async fn report(&self, ctx: &Context<'_>, input: ReportInput) -> Result<Report> {
        let me = viewer(ctx).require()?;
        let app = AppContext::get(ctx);
        let details = input.details.as_deref().unwrap_or_default().trim();
        if details.chars().count() > MAX_TEXT {
            return Err(Error::bad_input("details: at most 2,000 characters").into());
        }
        let target = match input.target_kind {
            ReportTargetKind::Video => {
                let id = parse_id(&input.target_id)?;
                videos::get(app.db.pool(), id)
                    .await
                    .map_err(Error::from)?
                    .filter(|v| v.visible_to(Some(me)))
                    .ok_or(Error::NotFound("no such video"))?;
                id.to_string()
            }
            ReportTargetKind::Comment => {
                let id = CommentId::parse(&input.target_id)?;
                app.comments
                    .get(id)
                    .await
                    .map_err(Error::from)?
                    .filter(|c| !c.deleted && !c.author_hidden)
                    .ok_or(Error::NotFound("no such comment"))?;
                id.to_string()
            }
            ReportTargetKind::User => {
                let id = Uuid::parse_str(input.target_id.as_str())
                    .map_err(|_| Error::bad_input("not a user id"))?;
                app.users
                    .load_one(id)
                    .await?
                    .ok_or(Error::NotFound("no such user"))?;
                id.to_string()
            }
        };
        let row = store::file_report(
            app.db.pool(),
            me,
            input.target_kind.as_str(),
            &target,
            input.reason.as_str(),
            details,
        )
        .await
        .map_err(Error::from)?;
        Ok(Report(row))
    }

    /// Hides a video from everyone but its owner (moderators only).
    async fn hide_video(
        &self,
        ctx: &Context<'_>,
        video_id: ID,
        reason: String,
        report_id: Option<ID>,
    ) -> Result<ModerationAction> {
        let decision = Decision::of(ctx, reason, report_id)?;
        let video = parse_id(&video_id)?;
        set_hidden(AppContext::get(ctx), &decision, video, true).await
    }

    /// Shows a hidden video again (moderators only); its owner is told why
    /// (`VIDEO_RESTORED`). A video that is not hidden is BAD_USER_INPUT, and nothing
    /// changes.
    async fn unhide_video(
        &self,
        ctx: &Context<'_>,
        video_id: ID,
        reason: String,
    ) -> Result<ModerationAction> {
        let decision = Decision::of(ctx, reason, None)?;
        let video = parse_id(&video_id)?;
        set_hidden(AppContext::get(ctx), &decision, video, false).await
    }

    /// Deletes a comment (moderators only).
    async fn remove_comment(
        &self,
        ctx: &Context<'_>,
        comment_id: ID,
        reason: String,
        report_id: Option<ID>,
    ) -> Result<ModerationAction> {
        let decision = Decision::of(ctx, reason, report_id)?;
        let id = CommentId::parse(&comment_id)?;
        let app = AppContext::get(ctx);
        let (comment, row) = comments::graphql::with_video(app, id).await?;
        // The comment goes first (idempotent), the record after: a crash in between
        // leaves a deleted comment whose retry writes the record.
        comments::graphql::remove(app, &comment, row).await?;
        let mut tx = app.db.pool().begin().await.map_err(Error::from)?;
        let entry = decision
            .record(
                &mut tx,
                ModerationActionKind::RemoveComment,
                "comment",
                &id.to_string(),
            )
            .await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(entry)
    }

    /// Bans a user (moderators only): every token of theirs stops working at once, their
    /// logins are refused, their videos and comments are hidden, their live connections
    /// close. Moderators ban accounts without a staff role; admins moderators too; nobody
    /// bans an admin (FORBIDDEN).
    async fn ban_user(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        reason: String,
        report_id: Option<ID>,
    ) -> Result<ModerationAction> {
        let decision = Decision::of(ctx, reason, report_id)?;
        let user = parse_user(&user_id)?;
        if user == decision.moderator {
            return Err(Error::bad_input("moderators cannot ban themselves").into());
        }
        let app = AppContext::get(ctx);
        // The target's roles as auth has them now, not as cached.
        let target = app
            .directory
            .fresh(user)
            .await
            .map_err(crate::users::directory::api_error)?
            .ok_or(Error::NotFound("no such user"))?;
        staff(ctx).may_ban(Staff::of_account(&target.roles))?;
        set_banned(app, &decision, user, true).await
    }

    /// Lifts a ban (moderators only): the account may sign in again and its content is
    /// back where it was.
    async fn unban_user(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        reason: String,
    ) -> Result<ModerationAction> {
        let decision = Decision::of(ctx, reason, None)?;
        let user = parse_user(&user_id)?;
        set_banned(AppContext::get(ctx), &decision, user, false).await
    }

    /// Closes a report without acting on its target (moderators only).
    async fn dismiss_report(
        &self,
        ctx: &Context<'_>,
        report_id: ID,
        reason: String,
    ) -> Result<ModerationAction> {
        let decision = Decision::of(ctx, reason, Some(report_id))?;
        let app = AppContext::get(ctx);
        let report = decision.report.expect("given");
        let mut tx = app.db.pool().begin().await.map_err(Error::from)?;
        let row = store::report(&mut tx, report)
            .await
            .map_err(Error::from)?
            .ok_or(Error::NotFound("no such report"))?;
        if !store::close_report(&mut tx, report, "dismissed", decision.moderator)
            .await
            .map_err(Error::from)?
        {
            return Err(Error::bad_input("this report is not open").into());
        }
        let entry = decision
            .log_only(
                &mut tx,
                ModerationActionKind::DismissReport,
                &row.target_kind,
                &row.target_id,
            )
            .await?;
        tx.commit().await.map_err(Error::from)?;
        Ok(entry)
    }
}

fn parse_user(id: &ID) -> Result<Uuid, Error> {
    Uuid::parse_str(id.as_str()).map_err(|_| Error::bad_input("not a user id"))
}

/// A moderator's decision in the making: who, why, prompted by which report.
struct Decision {
    moderator: Uuid,
    reason: String,
    report: Option<Uuid>,
}

impl Decision {
    /// The moderator (FORBIDDEN for anyone else) and a valid reason.
    fn of(ctx: &Context<'_>, reason: String, report: Option<ID>) -> Result<Self, Error> {
        let moderator = viewer(ctx).require()?;
        staff(ctx).require_moderator()?;
        let reason = reason.trim().to_owned();
        if reason.is_empty() || reason.chars().count() > MAX_TEXT {
            return Err(Error::bad_input(
                "reason: say why, in 1 to 2,000 characters",
            ));
        }
        let report = report
            .map(|id| Uuid::parse_str(id.as_str()))
            .transpose()
            .map_err(|_| Error::bad_input("not a report id"))?;
        Ok(Self {
            moderator,
            reason,
            report,
        })
    }

    /// Resolves the target's open reports and writes the log entry.
    async fn record(
        &self,
        conn: &mut sqlx::PgConnection,
        action: ModerationActionKind,
        target_kind: &str,
        target_id: &str,
    ) -> Result<ModerationAction, Error> {
        store::close_reports_on(conn, target_kind, target_id, "resolved", self.moderator).await?;
        self.log_only(conn, action, target_kind, target_id).await
    }

    async fn log_only(
        &self,
        conn: &mut sqlx::PgConnection,
        action: ModerationActionKind,
        target_kind: &str,
        target_id: &str,
    ) -> Result<ModerationAction, Error> {
        let row = store::log(
            conn,
            &Entry {
                moderator: self.moderator,
                action: action.as_str(),
                target_kind,
                target_id,
                reason: &self.reason,
                report: self.report,
            },
        )
        .await?;
        Ok(ModerationAction(row))
    }
}

async fn set_hidden(
    app: &AppContext,
    decision: &Decision,
    video: Uuid,
    hidden: bool,
) -> Result<ModerationAction> {
    let mut tx = app.db.pool().begin().await.map_err(Error::from)?;
    let store::HiddenChange {
        owner_id,
        revision,
        was_hidden,
    } = store::set_hidden(&mut tx, video, hidden.then_some(decision.reason.as_str()))
        .await
        .map_err(Error::from)?
        .ok_or(Error::NotFound("no such video"))?;
    let event = VideoModerated {
        video_id: video,
        owner_id,
        hidden,
        revision,
    };
    outbox::enqueue(&mut tx, &app.events, &Envelope::new(event))
        .await
        .map_err(Error::from)?;
    let action = if hidden {
        ModerationActionKind::HideVideo
    } else {
        ModerationActionKind::UnhideVideo
    };
    let entry = decision
        .record(&mut tx, action, "video", &video.to_string())
        .await?;
    if !hidden && !was_hidden {
        // Nothing to lift: the transaction is dropped, so nothing changed or was logged.
        return Err(Error::bad_input("this video is not hidden").into());
    }
    // The owner is told why, of the hiding and of its end, once per decision (the
    // revision makes each one new).
    let kind = if hidden {
        Kind::VideoHidden
    } else {
        Kind::VideoRestored
    };
    let notice = NewNotification {
        video: Some(video),
        detail: Some(decision.reason.clone()),
        ..NewNotification::new(owner_id, kind, format!("{video}:{revision}"))
    };
    let notified = notifications::store::notify(&mut tx, &notice)
        .await
        .map_err(Error::from)?;
    tx.commit().await.map_err(Error::from)?;
    app.relay.notify();
    forget_pages(app);
    app.realtime.access_changed(video).await;
    notifications::announce(app, notified.as_slice()).await;
    Ok(entry)
}

async fn set_banned(
    app: &AppContext,
    decision: &Decision,
    user: Uuid,
    banned: bool,
) -> Result<ModerationAction> {
    if app.users.load_one(user).await?.is_none() {
        return Err(Error::NotFound("no such user").into());
    }
    let mut tx = app.db.pool().begin().await.map_err(Error::from)?;
    let (revision, videos) =
        store::set_banned(&mut tx, user, banned.then_some(decision.reason.as_str()))
            .await
            .map_err(Error::from)?;
    let event = UserModerated {
        user_id: user,
        banned,
        revision,
    };
    outbox::enqueue(&mut tx, &app.events, &Envelope::new(event))
        .await
        .map_err(Error::from)?;
    let action = if banned {
        ModerationActionKind::BanUser
    } else {
        ModerationActionKind::UnbanUser
    };
    let entry = decision
        .record(&mut tx, action, "user", &user.to_string())
        .await?;
    tx.commit().await.map_err(Error::from)?;
    app.relay.notify();
    forget_pages(app);
    if banned {
        // At once, from here; the consumer of the event does it again (durably) and
        // hides the comments (events::apply).
        end_sessions(app, user).await;
    }
    for video in videos {
        app.realtime.access_changed(video).await;
    }
    Ok(entry)
}

/// Withheld (or restored) videos leave (or rejoin) this replica's cached feed and search
/// pages at once; other replicas' pages expire within `FEED_CACHE_MILLIS` /
/// `SEARCH_CACHE_MILLIS` (1 s).
fn forget_pages(app: &AppContext) {
    app.feed_cache.clear();
    app.search_cache.clear();
}

/// Closes the user's live connections on every replica.
async fn end_sessions(app: &AppContext, user: Uuid) {
    let event = wire::Event::SessionEnded { user_id: user };
    if let Err(error) = app
        .realtime
        .hub
        .publish(wire::SESSIONS_CHANNEL, &event)
        .await
    {
        tracing::warn!(%error, %user, "session ending not published");
    }
}
