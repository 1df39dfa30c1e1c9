// kv.cpp - the generated C++ binding (kv.hpp) driving the kv example as a C++ host
// would: records as value types in both directions (text, bytes, enums, arrays,
// options, nested and optional records), errors as results, futures, callables freed
// exactly once, static methods, an inline export and the constants. Built with -Wall
// -Wextra -Werror as C++17 and C++20 and run under ASan+UBSan by tests/c_host.rs.
#include <string>
#include <vector>

#include "check.hpp"
#include "kv.hpp"

namespace {

using kv::Result;

constexpr uint32_t TIMEOUT_MS = 10000;

kv::Context make(const std::string& name = "store") {
    Result<kv::Context> made = kv::Context::create(name, std::nullopt);
    CHECK(made.ok());
    return std::move(made).value();
}

kv::Entry entry(const std::string& key, std::vector<uint8_t> value) {
    kv::Entry e;
    e.key = key;
    e.value = std::move(value);
    e.kind = kv::Kind::Blob;
    return e;
}

void values_cross_both_ways() {
    kv::Context store = make();
    auto first = store.put("a", {1, 2, 3}, kv::Kind::Blob, {"x", "y"}, uint64_t{5000}, TIMEOUT_MS);
    CHECK(first.ok() && !first->has_value());

    auto replaced = store.put("a", {9}, kv::Kind::Text, {}, std::nullopt, TIMEOUT_MS);
    CHECK(replaced.ok() && replaced->has_value());
    const kv::Entry& old = **replaced;
    CHECK(old.key == "a");
    CHECK((old.value == std::vector<uint8_t>{1, 2, 3}));
    CHECK(old.kind == kv::Kind::Blob);
    CHECK((old.tags == std::vector<std::string>{"x", "y"}));
    CHECK(old.ttl_ms == std::optional<uint64_t>(5000));
    CHECK(!old.note.has_value());
    CHECK(old.meta.version == 1);

    auto now = store.get("a");
    CHECK(now.ok() && now->value == std::vector<uint8_t>{9} && now->kind == kv::Kind::Text);
    CHECK(now.ok() && now->tags.empty() && !now->ttl_ms && now->meta.version == 2);

    CHECK(store.annotate("a", std::string("a note")).ok());
    CHECK(store.get("a")->note == std::optional<std::string>("a note"));
    CHECK(store.annotate("a", std::nullopt).ok());
    CHECK(!store.get("a")->note.has_value());

    auto found = store.find("missing");
    CHECK(found.ok() && !found->has_value());
    CHECK(store.name().value() == "store");
    CHECK(store.delete_("a").value());
    CHECK(!store.delete_("a").value());
}

void arrays_of_records_and_filters() {
    kv::Context store = make();
    std::vector<kv::Entry> entries;
    for (int i = 0; i < 5; i++) {
        kv::Entry e = entry("k" + std::to_string(i), std::vector<uint8_t>(size_t(i) * 10, uint8_t(i)));
        e.kind = i % 2 == 0 ? kv::Kind::Text : kv::Kind::Blob;
        e.tags = {"t" + std::to_string(i)};
        if (i == 3) e.note = "third";
        if (i == 4) e.ttl_ms = 7;
        entries.push_back(e);
    }
    auto stored = store.put_many(entries);
    CHECK(stored.ok() && *stored == 5);

    auto all = store.list(std::nullopt, std::nullopt, std::nullopt);
    CHECK(all.ok() && all->size() == 5);
    if (all.ok() && all->size() == 5) {
        for (size_t i = 0; i < 5; i++) {
            const kv::Entry& e = (*all)[i];
            CHECK(e.key == entries[i].key && e.value == entries[i].value);
            CHECK(e.kind == entries[i].kind && e.tags == entries[i].tags);
            CHECK(e.note == entries[i].note && e.ttl_ms == entries[i].ttl_ms);
        }
    }
    auto texts = store.list(std::string("k"), kv::Kind::Text, 2u);
    CHECK(texts.ok() && texts->size() == 2);
    CHECK(texts.ok() && texts->size() == 2 && (*texts)[0].key == "k0" && (*texts)[1].key == "k2");

    auto keys = store.keys();
    CHECK(keys.ok() && (*keys == std::vector<std::string>{"k0", "k1", "k2", "k3", "k4"}));

    auto usage = store.usage();
    CHECK(usage.ok() && usage->entries == 5 && usage->bytes == 100);
    CHECK(usage.ok() && usage->largest && usage->largest->key == "k4" && usage->largest->ttl_ms == uint64_t{7});

    kv::Context empty = make("empty");
    auto none = empty.usage();
    CHECK(none.ok() && none->entries == 0 && !none->largest.has_value());
    CHECK(empty.keys().ok() && empty.keys()->empty());
}

void errors_are_results() {
    kv::Context store = make();
    auto missing = store.get("nope");
    CHECK(!missing.ok());
    CHECK(!missing.ok() && missing.error().code == FFID_RET_ERR && missing.error().message == "not found: nope");

    CHECK(store.put("text", {1}, kv::Kind::Text, {}, std::nullopt).ok());
    auto not_counter = store.incr("text", 1);
    CHECK(!not_counter.ok() && not_counter.error().message == "not a counter: text");
    CHECK(store.incr("n", 40).value() == 40);
    CHECK(store.incr("n", 2).value() == 42);

    bool threw = false;
    try {
        (void)store.get("nope").value();
    } catch (const ffid::Failure& f) {
        threw = f.error().message == "not found: nope";
    }
    CHECK(threw);

    // A constructor that fails: the create result says why, and nothing leaks.
    auto bad = kv::Context::create("", std::nullopt);
    CHECK(!bad.ok() && bad.error().message == "the store needs a name");

    // Options the runtime refuses: create says why (kv_last_error).
    ffid_options opts;
    ffid_options_init(&opts);
    opts.ring_capacity = 0;
    auto refused = kv::Context::create("x", std::nullopt, &opts);
    CHECK(!refused.ok() && !refused.error().message.empty());

    // A full store.
    auto small = kv::Context::create("small", 1u);
    CHECK(small.ok());
    if (small.ok()) {
        CHECK(small->put("a", {}, kv::Kind::Blob, {}, std::nullopt).ok());
        auto full = small->put("b", {}, kv::Kind::Blob, {}, std::nullopt);
        CHECK(!full.ok() && full.error().message == "store full (1 entries)");
    }
}

void futures_and_callables() {
    kv::Context store = make();
    std::vector<std::future<Result<std::optional<kv::Entry>>>> puts;
    for (int i = 0; i < 50; i++)
        puts.push_back(store.put_async("f" + std::to_string(i), {uint8_t(i)}, kv::Kind::Blob, {}, std::nullopt));
    for (auto& f : puts) CHECK(f.get().ok());
    auto got = store.get_async("f7").get();
    CHECK(got.ok() && got->value == std::vector<uint8_t>{7});
    auto err = store.get_async("nope").get();
    CHECK(!err.ok() && err.error().message == "not found: nope");

    // A callable is called once and freed after its answer.
    check::Counts counts;
    {
        check::Tracked<Result<kv::Entry>> done(&counts);
        CHECK(store.get("f1", done) == FFID_RET_OK);
    }
    CHECK(check::eventually([&] { return counts.calls == 1 && counts.live == 0; }));

    // A capturing lambda sees the value.
    std::promise<std::vector<std::string>> keys;
    CHECK(store.keys([&](Result<std::vector<std::string>> r) { keys.set_value(r.value()); }) == FFID_RET_OK);
    CHECK(keys.get_future().get().size() == 50);

    // Refused (a moved-from context has no handle): freed at once, never called.
    kv::Context moved = std::move(store);
    check::Counts refused;
    CHECK(store.get("f1", check::Tracked<Result<kv::Entry>>(&refused)) == FFID_RET_INVALID_CTX);
    CHECK(std::string(kv_last_error()) == "ctx is NULL");
    CHECK(refused.live == 0 && refused.calls == 0);
    auto never = store.get_async("f1");
    CHECK(never.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
    auto why = never.get();
    CHECK(why.error().code == FFID_RET_INVALID_CTX && why.error().message == "ctx is NULL");
    CHECK(!store.get("f1").ok());
    CHECK(moved.get("f1").ok());
}

void statics_inline_and_constants() {
    auto version = kv::version();
    CHECK(version.ok() && !version->empty());
    CHECK(kv::version_async().get().value() == version.value());
    check::Counts counts;
    CHECK(kv::version(check::Tracked<Result<std::string>>(&counts)) == FFID_RET_OK);
    CHECK(check::eventually([&] { return counts.calls == 1 && counts.live == 0; }));

    CHECK(kv::check_key("fine").ok());
    auto bad = kv::check_key("");
    CHECK(!bad.ok() && bad.error().message == "keys are 1 to 256 bytes");
    CHECK(kv::check_key(std::string(kv::MAX_KEY_LEN + 1, 'k')).error().code == FFID_RET_ERR);

    static_assert(kv::MAX_KEY_LEN == 256);
    CHECK(kv::PROTOCOL == "kv/1");
}

void contexts_move_and_destroy() {
    kv::Context a = make("a");
    kv::Context b = make("b");
    ffid_ctx* b_handle = b.native_handle();
    a = std::move(b); // a's own context is destroyed here
    CHECK(a.native_handle() == b_handle && b.native_handle() == nullptr);
    CHECK(a.name().value() == "b");
    CHECK(a.destroy() == FFID_RET_OK);
    CHECK(a.destroy() == FFID_RET_INVALID_CTX);
    CHECK(!a.name().ok());

    kv::Context c = make("c");
    ffid_ctx* raw = c.release_handle();
    CHECK(kv_destroy(raw) == FFID_RET_OK);
}

} // namespace

int main() {
    static const check::Case cases[] = {
        TEST(values_cross_both_ways),
        TEST(arrays_of_records_and_filters),
        TEST(errors_are_results),
        TEST(futures_and_callables),
        TEST(statics_inline_and_constants),
        TEST(contexts_move_and_destroy),
    };
    return check::run(cases);
}
