//! `trim::reply_text` and `trim::reply_text_with_history` on hand-written
//! replies in the layouts of common mail clients (tests/fixtures/trim/).

mod common;

use postdesk_mail::trim::{reply_text, reply_text_with_history};

fn text(name: &str) -> String {
    String::from_utf8(common::fixture(&format!("trim/{name}"))).unwrap()
}

fn trimmed(name: &str) -> String {
    reply_text(&text(name))
}

/// What postdesk sent in the conversation of the `with_history_*` fixtures.
const OUR_REPLY: &str = "Hi Jane, please switch the printer off and on again and tell us whether that helps.\n\nBest, Tom\n";

#[test]
fn gmail_attribution_and_quote() {
    assert_eq!(
        trimmed("gmail.txt"),
        "Hi,\n\nthe printer is back online after the restart. Thanks a lot!\n\nJane"
    );
}

#[test]
fn gmail_attribution_wrapped_over_two_lines_with_crlf() {
    assert_eq!(trimmed("gmail_wrapped.txt"), "Yes, please go ahead.");
}

#[test]
fn outlook_original_message_separator() {
    assert_eq!(
        trimmed("outlook_original.txt"),
        "Attached is the log file you asked for.\n\nRegards,\nJane"
    );
}

#[test]
fn outlook_header_block_without_quotes() {
    // The history below "From: / Sent: / To: / Subject:" is not `>`-quoted.
    assert_eq!(trimmed("outlook_headers.txt"), "Done, it works now.");
    assert_eq!(
        trimmed("outlook_headers_de.txt"),
        "Vielen Dank, jetzt geht es."
    );
}

#[test]
fn apple_mail_quote_and_mobile_signature() {
    assert_eq!(trimmed("apple.txt"), "Perfect, thank you!");
}

#[test]
fn signature_delimiter() {
    let input = text("signature_dashes.txt");
    assert!(
        input.contains("\n-- \n"),
        "fixture keeps the trailing space"
    );
    assert_eq!(trimmed("signature_dashes.txt"), "The order number is 4711.");
}

#[test]
fn trailing_mobile_signatures() {
    assert_eq!(
        trimmed("mobile_signatures.txt"),
        "Got it, I'll try tonight."
    );
    // Only at the end: a line like this followed by text stays.
    let text = "Sent from my iPhone, the photo shows the error.\nSee attachment.";
    assert_eq!(reply_text(text), text);
}

#[test]
fn translated_client_taglines_are_removed_as_a_family() {
    // Each mobile client's tagline in the languages it is translated into:
    // a short line naming the device or app that starts or ends with the
    // client's "sent" (or Outlook's "get"/"download"), links as Outlook's
    // text/plain writes them (`text<url>`) or as Markdown.
    for tagline in [
        "Von meinem iPhone gesendet",
        "Envoyé de mon iPad",
        "Inviato da iPhone",
        "Enviado desde mi iPhone",
        "Verzonden vanaf mijn iPhone",
        "Skickat från min iPhone",
        "Lähetetty iPhonesta",
        "Wysłane z iPhone'a",
        "Odesláno z iPhonu",
        "iPhone'umdan gönderildi",
        "Elküldve az iPhone-omról",
        "Отправлено с iPhone",
        "iPhoneから送信",
        "iPhone에서 보냄",
        "Von meinem Samsung Galaxy Smartphone gesendet.",
        "Envoyé depuis mon appareil Galaxy",
        "Gesendet mit der sicheren E-Mail von Proton Mail.",
        "Envoyé avec la messagerie sécurisée Proton Mail.",
        "Von Gmail Mobile gesendet",
        "Inviato da Yahoo Mail su Android",
        "Outlook für Android<https://aka.example/ghei36> herunterladen",
        "Obtenir Outlook pour iOS<https://aka.example/o0ukef>",
        "Obtener [Outlook para Android](https://aka.example/ghei36)",
        "Scarica Outlook per Android",
        "Outlook voor iOS downloaden",
        "Hämta Outlook för iOS",
        "Pobierz aplikację Outlook dla systemu Android",
        "Получить Outlook для iOS",
        "iOS 版 Outlook を入手",
    ] {
        let text = format!("Danke, passt so.\nNina\n\n{tagline}\n");
        assert_eq!(reply_text(&text), "Danke, passt so.\nNina", "{tagline}");
    }
    // Sentences that name a phone or Outlook are text, also at the end.
    kept_whole(
        [
            "Ich habe es vom iPhone gesendet, aber es kam nicht an",
            "I can't get Outlook for Android to sync",
            "Das Foto habe ich mit dem Samsung gemacht und gesendet am Montag, bitte prüfen",
            "Sent to Samsung support as well",
            "The app on my iPhone crashes when I open Outlook for iOS",
        ],
        |line| format!("Hello,\n\n{line}\n"),
    );
}

/// Each text made by `make` comes out of `reply_text` whole (trimmed).
fn kept_whole<const N: usize>(parts: [&str; N], make: impl Fn(&str) -> String) {
    for part in parts {
        let text = make(part);
        assert_eq!(reply_text(&text), text.trim(), "{part}");
    }
}

#[test]
fn attributions_without_a_known_verb_are_found_by_the_quote_below() {
    let quote = "> Hi,\n>\n> we deliver on Saturdays too.\n>\n> Tom\n";
    for attribution in [
        // mutt's default attribution format.
        "* Acme Support <support@example.com> [2024-03-05 10:12 +0000]:",
        // A date, a time and a name.
        "05-03-2024 11:12, Acme Support:",
        "2024/3/5 10:12, Acme Support:",
        // Horde ("Zitat von" has no verb): an address, the quote to the end.
        "Zitat von Acme Support <support@example.com>:",
        "Citando Acme Support <support@example.com>:",
        // Wrapped over two lines at 72 columns.
        "* Acme Customer Support Team <customer.support@example.com> [2024-03-05\n10:12 +0000]:",
    ] {
        for gap in ["", "\n"] {
            let text = format!("Fine, Saturday works.\n\nLotte\n\n{attribution}\n{gap}{quote}");
            assert_eq!(
                reply_text(&text),
                "Fine, Saturday works.\n\nLotte",
                "{attribution:?}"
            );
        }
    }
    // With a date and a time, also above inline answers.
    let text = "See below.\n\n05-03-2024 11:12, Acme Support:\n> Which version?\n4.2\n> Which browser?\nFirefox\n";
    assert_eq!(
        reply_text(text),
        "See below.\n\n> Which version?\n4.2\n> Which browser?\nFirefox"
    );
}

#[test]
fn lines_before_a_quote_without_date_or_address_stay() {
    // The customer's own lead-in above a quote they answer.
    kept_whole(
        [
            "Here is what I think:",
            "I got this from billing@example.org:",
            "Upgrade to 2.1 at 10:00:",
            "Thanks. Here is the log from 2024-03-05 10:12:",
            "Did you see this on 2024-03-05 at 10:12?",
        ],
        |lead_in| format!("Hello,\n\n{lead_in}\n> The export stops at 50%.\nIt still does.\n"),
    );
    // A short line of the customer's right above such an attribution is
    // no first half of it.
    let text = "Saturday works.\nLotte\n05-03-2024 11:12, Acme Support:\n> Hi\n";
    assert_eq!(reply_text(text), "Saturday works.\nLotte");
    // The same lead-in above a quote that runs to the end goes with it only
    // when it holds an address (it introduces the history).
    let text = "Thanks!\n\nHere is what I think:\n> quoted\n";
    assert_eq!(reply_text(text), "Thanks!\n\nHere is what I think:");
}

#[test]
fn interleaved_answers_are_kept() {
    assert_eq!(
        trimmed("interleaved.txt"),
        "Answers below.\n\n> Which version are you running?\n\n2.1.3\n\n\
         > Which operating system?\n\nDebian 12, fully updated."
    );
}

#[test]
fn bottom_posted_reply_loses_the_quote_above() {
    assert_eq!(
        trimmed("bottom_post.txt"),
        "It was not. Works now, sorry for the noise!"
    );
}

#[test]
fn forward_at_the_top_keeps_the_forwarded_text() {
    assert_eq!(
        trimmed("forward_at_top.txt"),
        "Your order 4711 has been shipped."
    );
}

#[test]
fn french_attribution() {
    assert_eq!(trimmed("french.txt"), "Merci, c'est réglé.");
}

#[test]
fn unquoted_history_below_an_attribution() {
    assert_eq!(trimmed("unquoted_history.txt"), "Thanks, that was it.");
}

#[test]
fn ordinary_lines_that_resemble_markers_are_kept() {
    let input = text("not_history.txt");
    assert_eq!(reply_text(&input), input.trim_end());
}

#[test]
fn quote_only_message_is_kept_whole() {
    assert_eq!(reply_text("> only a quote\n>\n"), "> only a quote\n>");
    assert_eq!(reply_text("  \n\n"), "");
}

#[test]
fn our_message_quoted_without_attribution_is_history() {
    let input = text("with_history_top.txt");
    // Without knowing our message it is an ordinary quote above new text.
    assert!(reply_text(&input).starts_with("> Hi Jane"));
    assert_eq!(
        reply_text_with_history(&input, &[OUR_REPLY]),
        "That helped, thank you."
    );
}

#[test]
fn our_message_in_the_middle_keeps_text_below() {
    let input = text("with_history_middle.txt");
    assert!(reply_text(&input).contains("> please switch"));
    assert_eq!(
        reply_text_with_history(&input, &["an older reply of ours", OUR_REPLY]),
        "Thanks Tom, see below.\n\nP.S. The second printer has the same problem."
    );
}

#[test]
fn partial_quotes_of_our_message_stay_as_context() {
    let input = "> please switch the printer off and on again\nDone, no change.\n";
    assert_eq!(
        reply_text_with_history(input, &[OUR_REPLY]),
        "> please switch the printer off and on again\nDone, no change."
    );
}

#[test]
fn unrelated_history_is_not_removed() {
    let input = "> Hi Jane, please check the cable.\n\nIt is plugged in.";
    assert_eq!(reply_text_with_history(input, &[OUR_REPLY]), input);
    // Messages of fewer than three words never match.
    assert_eq!(
        reply_text_with_history("> Thanks Tom\n\nYou're welcome", &["Thanks Tom"]),
        "> Thanks Tom\n\nYou're welcome"
    );
}

/// Attribution lines of many clients, languages and date styles: each is
/// removed with the quote below it, and cuts unquoted history below it.
#[test]
fn attributions_in_many_languages_and_date_styles() {
    let lines = [
        "On Tue, Mar 5, 2024 at 9:12 AM Support Team <help@example.com> wrote:",
        "On 5 Mar 2024, at 09:12, Support Team <help@example.com> wrote:",
        "On 2024-03-05 09:12, Support Team wrote:",
        "On 05.03.2024 09:12, Support Team wrote:",
        "Support Team <help@example.com> wrote on 05/03/2024 09:12:",
        "Support Team wrote on 2024-03-05 09:12:",
        "Le mar. 5 mars 2024 à 09:12, Service client <help@example.com> a écrit :",
        "Le 05/03/2024 à 09:12, Service client a écrit :",
        "Am Di., 5. März 2024 um 09:12 Uhr schrieb Kundendienst <help@example.com>:",
        "Am 05.03.2024 um 09:12 schrieb Kundendienst:",
        "Kundendienst <help@example.com> schrieb am Di., 5. März 2024, 09:12:",
        "El mar, 5 mar 2024 a las 9:12, Soporte (<help@example.com>) escribió:",
        "Op di 5 mrt 2024 om 09:12 schreef Support Team <help@example.com>:",
        "Il giorno mar 5 mar 2024 alle ore 09:12 Assistenza <help@example.com> ha scritto:",
        "Em ter., 5 de mar. de 2024 às 09:12, Suporte <help@example.com> escreveu:",
        "вт, 5 мар. 2024 г. в 09:12, Служба поддержки <help@example.com>:",
        "05.03.2024, 09:12, \"Support Team\" <help@example.com>:",
        "Вторник, 5 марта 2024, 9:12 +03:00 от Служба поддержки <help@example.com>:",
        "Support Team <help@example.com> 于2024年3月5日周二 09:12写道：",
        "在 2024年3月5日，09:12，Support Team <help@example.com> 写道：",
        "2024年3月5日(火) 9:12 Support Team <help@example.com>:",
        "2024년 3월 5일 (화) 오전 9:12, Support Team <help@example.com>님이 작성:",
        "Den tis 5 mars 2024 kl 09:12 skrev Support Team <help@example.com>:",
        "tir. 5. mar. 2024 kl. 09:12 skrev Support Team <help@example.com>:",
        "wt., 5 mar 2024 o 09:12 Support Team <help@example.com> napisał(a):",
        "ti 5. maalisk. 2024 klo 9.12 Support Team (help@example.com) kirjoitti:",
        "Support Team <help@example.com> ezt írta (időpont: 2024. márc. 5., K, 9:12):",
        "út 5. 3. 2024 v 9:12 odesílatel Support Team <help@example.com> napsal:",
        "Support Team <help@example.com>, 5 Mar 2024 Sal, 09:12 tarihinde şunu yazdı:",
        "Στις Τρί 5 Μαρ 2024 στις 9:12 π.μ., ο/η Support Team <help@example.com> έγραψε:",
        "2024-03-05 9:12 GMT+01:00 Support Team <help@example.com>:",
        "---- On Tue, 05 Mar 2024 09:12:00 +0100 Support Team <help@example.com> wrote ---",
        "05.03.2024 09:12, Support Team pisze:",
        "05.03.2024 09:12, Support Team <help@example.com> пишет:",
        "W dniu 5.03.2024 o 09:12, Support Team napisał:",
        "Op 5 mrt. 2024, om 09:12 heeft Support Team <help@example.com> het volgende geschreven:",
        "El 05/03/2024 09:12 a. m., Soporte escribió:",
    ];
    for attribution in lines {
        let quoted =
            format!("Thanks, it works now.\n\n{attribution}\n> Please restart it.\n> Bye\n");
        assert_eq!(
            reply_text(&quoted),
            "Thanks, it works now.",
            "quoted: {attribution}"
        );
        let unquoted = format!("Thanks, it works now.\n\n{attribution}\n\nPlease restart it.\n");
        assert_eq!(
            reply_text(&unquoted),
            "Thanks, it works now.",
            "unquoted: {attribution}"
        );
    }
}
