//! The OpenAPI 3.1 description of `/api/…`. A test checks that it names exactly the
//! API routes of [`crate::routes::table`], so the two cannot drift apart.

use axum::Json;
use serde_json::{Value, json};

use crate::auth::Agent;

pub async fn document(_agent: Agent) -> Json<Value> {
    Json(openapi())
}

fn ok(description: &str, schema: Value) -> Value {
    json!({
        "200": { "description": description, "content": { "application/json": { "schema": schema } } },
        "400": { "$ref": "#/components/responses/BadRequest" },
        "401": { "$ref": "#/components/responses/Unauthorized" },
        "404": { "$ref": "#/components/responses/NotFound" }
    })
}

fn id_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description,
            "schema": { "type": "integer", "format": "int64" } })
}

fn query_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description,
            "schema": { "type": "string" } })
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn text_body(description: &str) -> Value {
    json!({ "required": true, "content": { "application/json": { "schema": {
        "type": "object", "required": ["text"], "additionalProperties": false,
        "properties": { "text": { "type": "string", "description": description } } } } } })
}

pub fn openapi() -> Value {
    let nullable = |t: &str| json!({ "type": [t, "null"] });
    let durations = json!({ "type": "object", "description": "Wall-clock seconds from the ticket's creation; null without any",
        "properties": { "count": { "type": "integer" }, "median_seconds": nullable("integer"),
            "p90_seconds": nullable("integer") } });
    let tally = json!({ "type": "object", "properties": { "met": { "type": "integer" }, "missed": { "type": "integer" } } });
    let report_week = json!({
        "type": "object",
        "properties": {
            "helpdesk": { "type": "string" }, "week": { "type": "string", "example": "2026-W49" },
            "week_start": { "type": "string", "description": "Its Monday, YYYY-MM-DD" },
            "time_zone": { "type": "string", "description": "The helpdesk's SLA time zone, UTC without one" },
            "created": { "type": "integer" }, "closed": { "type": "integer" },
            "first_response": durations, "resolution": durations.clone(),
            "deadlines": { "type": "object", "description": "Deadlines due that week, per target",
                "properties": { "first_response": tally, "next_response": tally.clone(), "resolution": tally.clone() } }
        }
    });
    let ticket = json!({
        "type": "object",
        "properties": {
            "id": { "type": "integer" }, "reference": { "type": "string", "example": "[HD#1042]" },
            "helpdesk": { "type": "string" }, "number": { "type": "integer" },
            "title": { "type": "string" }, "status": { "type": "string" }, "closed": { "type": "boolean" },
            "priority": nullable("string"), "requester": nullable("string"),
            "organization": nullable("string"), "assignee": nullable("string"),
            "entries": { "type": "integer" },
            "reported_at": { "type": "integer", "description": "Unix seconds" },
            "modified_at": { "type": "integer", "description": "Unix seconds" },
            "due": { "type": ["object", "null"], "description": "The earliest running deadline",
                "properties": { "target": { "type": "string" }, "due_at": { "type": "integer" },
                    "label": { "type": "string", "example": "in 2 h" }, "overdue": { "type": "boolean" } } }
        }
    });
    let listed_ticket = json!({
        "allOf": [reference("Ticket"), { "type": "object", "properties": {
            "snippet": { "type": "string", "description": "Only in a search with words: the best matching text as HTML, escaped, the matches in <mark>" }
        } }]
    });
    let attachment = json!({
        "type": "object",
        "properties": {
            "name": { "type": "string" }, "mime_type": { "type": "string" }, "size": { "type": "integer" },
            "inline": { "type": "boolean" },
            "url": { "type": ["string", "null"], "description": "Download link; null when refused" },
            "refused": { "type": ["string", "null"], "description": "Why the attachment policy refused it" },
            "id": { "type": "integer" },
            "visibility": { "type": "string", "enum": ["public", "internal"], "description": "Whether the customer sees it in the portal" }
        }
    });
    let entry = json!({
        "type": "object",
        "properties": {
            "id": { "type": "integer" },
            "kind": { "type": "string", "enum": ["incoming", "outgoing", "note", "event"] },
            "author": nullable("string"), "from": nullable("string"), "to": nullable("string"),
            "cc": nullable("string"), "subject": nullable("string"),
            "text": { "type": "string", "description": "The new text, quotes and signature stripped" },
            "full_text": { "type": ["string", "null"], "description": "With quotes, when different" },
            "html": { "type": ["string", "null"], "description": "Sanitized HTML body" },
            "classification": nullable("string"), "warnings": nullable("string"),
            "detected_charset": { "type": ["string", "null"],
                "description": "Incoming mail: the encoding chosen for 8-bit text that had no usable label (e.g. windows-1251); null when the mail's labels were used" },
            "sender_source": { "type": ["string", "null"],
                "description": "Incoming mail: the header the sender was taken from (From, From (display name), Sender, Reply-To, Return-Path)" },
            "class_signal": { "type": ["string", "null"],
                "description": "Incoming mail: what decided the classification (e.g. Auto-Submitted: auto-replied)" },
            "visible_to_customer": { "type": "boolean" }, "created_at": { "type": "integer" },
            "intake_id": { "type": ["integer", "null"], "description": "Raw mail at /raw/{intake_id}" },
            "attachments": { "type": "array", "items": reference("Attachment") }
        }
    });
    let ticket_detail = json!({
        "allOf": [reference("Ticket"), { "type": "object", "properties": {
            "mail_subject": { "type": "string" }, "requester_name": nullable("string"),
            "requester_id": nullable("integer"), "ticket_type": nullable("string"),
            "category": nullable("string"), "subcategory": nullable("string"),
            "environment": nullable("string"), "manager": nullable("string"),
            "tags": { "type": "array", "items": { "type": "string" } },
            "thread": { "type": "array", "items": reference("Entry") },
            "deadlines": { "type": "array", "items": reference("Deadline") }
        } }]
    });
    let contact = json!({
        "type": "object",
        "properties": {
            "id": { "type": "integer" }, "name": { "type": "string" },
            "organization_id": nullable("integer"), "organization": nullable("string"),
            "addresses": { "type": "array", "items": { "type": "string" } },
            "tickets": { "type": "integer" }
        }
    });
    let organization = json!({
        "type": "object",
        "properties": { "id": { "type": "integer" }, "name": { "type": "string" },
                        "contacts": { "type": "integer" }, "tickets": { "type": "integer" } }
    });
    let mailbox = json!({
        "type": "object",
        "properties": {
            "index": { "type": "integer" }, "helpdesk": { "type": "string" }, "name": { "type": "string" },
            "host": { "type": "string" }, "active": { "type": "boolean" },
            "last_success_at": nullable("integer"), "last_error": nullable("string"),
            "last_error_at": nullable("integer"), "processed": { "type": "integer" }, "failed": { "type": "integer" }
        }
    });
    let failed_mail = json!({
        "type": "object",
        "properties": {
            "id": { "type": "integer" }, "helpdesk": nullable("string"), "source": { "type": "string" },
            "location": { "type": "string" }, "sender": nullable("string"), "subject": nullable("string"),
            "reason": nullable("string"), "received_at": { "type": "integer" }
        }
    });
    let notification = json!({
        "type": "object",
        "properties": {
            "id": { "type": "integer" }, "ticket_id": { "type": "integer" }, "ticket_number": { "type": "integer" },
            "helpdesk": { "type": "string" }, "title": { "type": "string" },
            "event": { "type": "string", "enum": ["created", "modified"] }, "text": { "type": "string" },
            "created_at": { "type": "integer" }, "read": { "type": "boolean" }
        }
    });
    let ticket_id = id_param("id", "The ticket's id (not its number)");
    // Interventions (issue 18).
    let intervention = json!({
        "type": "object",
        "properties": {
            "id": { "type": "integer" }, "ticket_id": { "type": "integer" },
            "helpdesk": { "type": "string" }, "ticket_number": { "type": "integer" },
            "ticket_title": { "type": "string" }, "assignee": nullable("string"),
            "planned_start": nullable("integer"), "planned_end": nullable("integer"),
            "status": { "type": "string", "enum": ["planned", "in-progress", "done", "cancelled"] },
            "minutes_spent": { "type": "integer" }, "text": { "type": "string" }, "report": { "type": "string" },
            "created_at": { "type": "integer" }, "modified_at": { "type": "integer" }
        }
    });
    // Deadlines (issue 18).
    let deadline = json!({
        "type": "object",
        "properties": {
            "target": { "type": "string", "enum": ["first_response", "next_response", "resolution"] },
            "name": { "type": "string" }, "policy": { "type": "string" },
            "started_at": { "type": "integer" }, "due_at": { "type": "integer", "description": "Unix seconds" },
            "standing": { "type": "string", "enum": ["met", "missed", "running", "overdue", "paused", "stopped"] },
            "met_at": nullable("integer"), "by_hand": { "type": "boolean" },
            "label": { "type": ["string", "null"], "description": "in 2 h, overdue 3 h; while it runs" }
        }
    });
    let failed_id = id_param("id", "The failed mail's id in the intake ledger");
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "postdesk API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Tickets made from mail, their threads, replies and notes, contacts, mailbox health and the failed queue. Every call needs `Authorization: Bearer <token>` (create one with `postdesk agents token NAME`) and sees only the helpdesks its agent belongs to."
        },
        "security": [{ "bearer": [] }],
        "paths": {
            "/api/openapi.json": { "get": { "summary": "This document", "responses": ok("OpenAPI document", json!({ "type": "object" })) } },
            "/api/me": { "get": { "summary": "The agent the token belongs to", "responses": ok("The agent", json!({
                "type": "object", "properties": { "id": { "type": "integer" }, "name": { "type": "string" },
                "email": nullable("string"), "role": { "type": "string", "enum": ["agent", "admin"] },
                "helpdesks": { "type": "array", "items": { "type": "string" } } } })) } },
            "/api/tickets": { "get": {
                "summary": "Find tickets",
                "parameters": [
                    query_param("q", "Full-text search: words and \"phrases\" that must all occur in the ticket (title, number, requester, senders, file names, messages, notes), and the filters from:, status:, helpdesk:, has:attachment"),
                    query_param("helpdesk", "Helpdesk name"), query_param("status", "Status"),
                    query_param("assignee", "Agent name, or - for unassigned"), query_param("priority", "Priority"),
                    query_param("requester", "Part of the requester's address or name"),
                    query_param("due", "overdue, or today: a running deadline due before the end of the day (UTC)"),
                    query_param("sort", "updated (default), created, number, priority, status, due (the earliest running deadline; soonest first unless order=desc) or relevance (the default with q)"),
                    query_param("order", "desc (default) or asc"),
                    query_param("page", "Page, from 1 (due and relevance sorts; the others page by cursor)"),
                    query_param("after", "The page after this cursor: a response's next"),
                    query_param("before", "The page before this cursor: a response's previous"),
                    query_param("per_page", "Tickets per page, 1–500 (default 50)")
                ],
                "responses": ok("One page of tickets", json!({ "type": "object", "properties": {
                    "total": { "type": "integer" },
                    "total_is_lower_bound": { "type": "boolean", "description": "A search matched more than the 1,000 newest tickets it ranks and counts; total and status_counts are theirs" },
                    "page": { "type": ["integer", "null"], "description": "null for a page reached by a cursor" },
                    "per_page": { "type": "integer" },
                    "next": { "type": ["string", "null"], "description": "Cursor of the next page (pass as after); null on the last page or for due/relevance sorts" },
                    "previous": { "type": ["string", "null"], "description": "Cursor of the previous page (pass as before)" },
                    "status_counts": { "type": "object", "additionalProperties": { "type": "integer" } },
                    "tickets": { "type": "array", "items": reference("ListedTicket") } } }))
            } },
            "/api/tickets/{id}": {
                "get": { "summary": "A ticket with its whole thread", "parameters": [ticket_id],
                         "responses": ok("The ticket", reference("TicketDetail")) },
                "patch": {
                    "summary": "Change status, priority, type or assignee (each change is recorded as an event)",
                    "parameters": [ticket_id],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": {
                        "type": "object", "additionalProperties": false, "properties": {
                            "status": { "type": "string" }, "priority": nullable("string"),
                            "type": nullable("string"), "assignee": { "type": ["string", "null"], "description": "Agent name; null to unassign" } } } } } },
                    "responses": ok("The changes and the ticket", json!({ "type": "object", "properties": {
                        "changes": { "type": "array", "items": { "type": "string" } }, "ticket": reference("TicketDetail") } }))
                }
            },
            "/api/tickets/{id}/reply": { "post": {
                "summary": "Reply to the customer: mailed to the requester and Cc'd participants, threaded, with the ticket reference",
                "parameters": [ticket_id], "requestBody": text_body("The reply"),
                "responses": ok("The queued mail", json!({ "type": "object", "properties": {
                    "entry_id": { "type": "integer" }, "outbox_id": { "type": "integer" },
                    "message_id": { "type": "string" }, "subject": { "type": "string" },
                    "recipients": { "type": "array", "items": { "type": "string" } }, "suppressed": { "type": "boolean" } } }))
            } },
            "/api/tickets/{id}/notes": { "post": {
                "summary": "Add an internal note (never shown to the customer)",
                "parameters": [ticket_id], "requestBody": text_body("The note"),
                "responses": ok("The note's entry", json!({ "type": "object", "properties": { "entry_id": { "type": "integer" } } }))
            } },
            "/api/tickets/{id}/deadlines": { "get": {
                "summary": "The ticket's deadlines: each target, when it is due and whether it was met",
                "parameters": [ticket_id],
                "responses": ok("Deadlines", json!({ "type": "object", "properties": {
                    "deadlines": { "type": "array", "items": reference("Deadline") } } }))
            } },
            "/api/tickets/{id}/deadlines/{target}": { "put": {
                "summary": "Set a deadline by hand (recorded as an event)",
                "parameters": [ticket_id, { "name": "target", "in": "path", "required": true,
                    "schema": { "type": "string", "enum": ["first_response", "next_response", "resolution"] } }],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "required": ["due"], "additionalProperties": false,
                    "properties": { "due": { "type": ["integer", "string"],
                        "description": "Unix seconds, or YYYY-MM-DD HH:MM (UTC)" } } } } } },
                "responses": ok("The event recorded", json!({ "type": "object", "properties": {
                    "event": { "type": "string" }, "due_at": { "type": "integer" }, "due": { "type": "string" } } }))
            } },
            "/api/tickets/{id}/interventions": {
                "get": { "summary": "The ticket's interventions, and the text a new one starts from (the helpdesk's template)",
                    "parameters": [ticket_id],
                    "responses": ok("Interventions", json!({ "type": "object", "properties": {
                        "interventions": { "type": "array", "items": reference("Intervention") },
                        "template_text": { "type": "string" } } })) },
                "post": { "summary": "Plan an intervention (its text from the template unless given)",
                    "parameters": [ticket_id],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": {
                        "type": "object", "additionalProperties": false, "properties": {
                            "assignee": nullable("string"), "text": nullable("string"),
                            "planned_start": { "type": ["string", "null"], "description": "YYYY-MM-DD HH:MM (UTC) or Unix seconds" },
                            "planned_end": { "type": ["string", "null"], "description": "YYYY-MM-DD HH:MM (UTC) or Unix seconds" } } } } } },
                    "responses": ok("The intervention", reference("Intervention")) }
            },
            "/api/interventions/{id}": { "patch": {
                "summary": "Change an intervention; the last open one done closes its ticket when the helpdesk says so",
                "parameters": [id_param("id", "The intervention's id")],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false, "properties": {
                        "status": { "type": "string", "enum": ["planned", "in-progress", "done", "cancelled"] },
                        "minutes_spent": { "type": "integer" }, "report": { "type": "string" },
                        "assignee": { "type": ["string", "null"], "description": "null clears it" } } } } } },
                "responses": ok("The intervention, and the ticket's event when it was closed or reopened", json!({
                    "type": "object", "properties": { "intervention": reference("Intervention"),
                        "ticket_event": nullable("string") } }))
            } },
            "/api/reports": { "get": { "summary": "Weekly reports per helpdesk you see: tickets created and closed, first-response and resolution times, deadlines met and missed",
                "parameters": [query_param("since", "First day, YYYY-MM-DD (default: seven weeks ago); the report starts with its ISO week"),
                    query_param("until", "Last day, YYYY-MM-DD (default: today)"),
                    query_param("helpdesk", "Only this helpdesk (default: every one you see)")],
                "responses": ok("One row per helpdesk and week", json!({ "type": "object", "properties": {
                    "weeks": { "type": "array", "items": reference("ReportWeek") } } })) } },
            "/api/contacts": { "get": { "summary": "Find contacts", "parameters": [query_param("q", "Part of a name or address")],
                "responses": ok("Contacts", json!({ "type": "array", "items": reference("Contact") })) } },
            "/api/contacts/{id}": { "get": { "summary": "A contact and their tickets", "parameters": [id_param("id", "The contact's id")],
                "responses": ok("The contact", json!({ "type": "object", "properties": {
                    "contact": reference("Contact"), "tickets": { "type": "array", "items": reference("Ticket") } } })) } },
            "/api/organizations": { "get": { "summary": "Organizations", "responses": ok("Organizations", json!({ "type": "array", "items": reference("Organization") })) } },
            "/api/mailboxes": { "get": { "summary": "Mailbox health: last successful check, last error, counts",
                "responses": ok("Mailboxes", json!({ "type": "array", "items": reference("Mailbox") })) } },
            "/api/failed": { "get": { "summary": "The failed queue: mails that could not be processed, with their reason",
                "responses": ok("Failed mails", json!({ "type": "array", "items": reference("FailedMail") })) } },
            "/api/failed/{id}/retry": { "post": { "summary": "Process a failed mail again, after the cause was fixed", "parameters": [failed_id],
                "responses": ok("What happened", json!({ "type": "object", "properties": {
                    "outcome": { "type": "string", "enum": ["created", "appended", "ignored", "failed", "duplicate"] },
                    "ticket_id": nullable("integer"), "ticket_number": nullable("integer"),
                    "reason": nullable("string"), "message": { "type": "string" } } })) } },
            "/api/failed/{id}/dismiss": { "post": { "summary": "Take a mail off the failed queue (it stays in the ledger)", "parameters": [failed_id],
                "responses": ok("Dismissed", json!({ "type": "object", "properties": { "dismissed": { "type": "integer" } } })) } },
            "/api/notifications": { "get": { "summary": "Your notifications inside the app, newest first, and how many are unread",
                "responses": ok("Notifications", json!({ "type": "object", "properties": {
                    "unread": { "type": "integer" },
                    "notifications": { "type": "array", "items": reference("Notification") } } })) } },
            "/api/notifications/read": { "post": { "summary": "Mark one of your notifications read (`id`), or all of them",
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false, "properties": { "id": nullable("integer") } } } } },
                "responses": ok("How many were marked", json!({ "type": "object", "properties": { "marked": { "type": "integer" } } })) } },
            "/api/tickets/{id}/watch": { "post": { "summary": "Watch a ticket (or stop): watchers are told of its changes",
                "parameters": [ticket_id],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false, "required": ["watch"], "properties": { "watch": { "type": "boolean" } } } } } },
                "responses": ok("Watching or not", json!({ "type": "object", "properties": { "watching": { "type": "boolean" } } })) } },
            "/api/attachments/{id}": { "patch": { "summary": "Make an attachment public (the customer sees it in the portal) or internal; recorded as an event",
                "parameters": [id_param("id", "The attachment's id")],
                "requestBody": { "required": true, "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false, "required": ["visibility"],
                    "properties": { "visibility": { "type": "string", "enum": ["public", "internal"] } } } } } },
                "responses": ok("The ticket and the new visibility", json!({ "type": "object", "properties": {
                    "ticket_id": { "type": "integer" }, "visibility": { "type": "string" } } })) } }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "responses": {
                "BadRequest": { "description": "The request is invalid; `error` says what to change", "content": { "application/json": { "schema": reference("Error") } } },
                "Unauthorized": { "description": "No valid token", "content": { "application/json": { "schema": reference("Error") } } },
                "NotFound": { "description": "Not there, or not in your helpdesks", "content": { "application/json": { "schema": reference("Error") } } }
            },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "string" } } },
                "Ticket": ticket, "ListedTicket": listed_ticket, "TicketDetail": ticket_detail, "Entry": entry, "Attachment": attachment,
                "Contact": contact, "Organization": organization, "Mailbox": mailbox, "FailedMail": failed_mail,
                "Deadline": deadline, "Intervention": intervention, "Notification": notification,
                "ReportWeek": report_week
            }
        }
    })
}
