// A server-side WebSocket connection (adapters/websocket/server_connection.hpp) over a real
// loopback TCP connection, with a hand-driven client: messages both ways, pings answered, the
// close handshake, and a client that reads nothing closed within the close timeout after end().
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "adapters/http/connection_registry.hpp"
#include "adapters/http/stream.hpp"
#include "adapters/websocket/server_connection.hpp"

namespace {

namespace asio = boost::asio;
namespace ws = registrar::adapters::websocket;
namespace http = registrar::adapters::http;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

std::string client_frame(unsigned first_byte, std::string_view payload) {
  std::string f;
  f.push_back(static_cast<char>(first_byte));
  f.push_back(static_cast<char>(0x80 | payload.size()));  // tests send < 126 bytes
  const char key[4] = {'\x11', '\x22', '\x33', '\x44'};
  f.append(key, 4);
  for (std::size_t i = 0; i < payload.size(); ++i) f.push_back(static_cast<char>(payload[i] ^ key[i & 3]));
  return f;
}

struct Recorder : ws::ConnectionHandler {
  std::mutex mutex;
  std::vector<std::string> messages;
  int ends = 0;
  std::promise<void> ended;
  void on_ws_message(ws::ServerConnection&, std::string data, bool) override {
    std::lock_guard lock(mutex);
    messages.push_back(std::move(data));
  }
  void on_ws_end(ws::ServerConnection&) override {
    std::lock_guard lock(mutex);
    if (++ends == 1) ended.set_value();
  }
  void on_ws_drain(ws::ServerConnection& c) override { c.end(); }
};

class WebSocketConnection : public ::testing::Test {
 protected:
  void SetUp() override {
    tcp::acceptor acceptor(ioc_, {asio::ip::make_address("127.0.0.1"), 0});
    client_.connect(acceptor.local_endpoint());
    tcp::socket server_side(asio::make_strand(ioc_));
    acceptor.accept(server_side);
    connection_ = std::make_shared<ws::ServerConnection>(http::HttpStream(std::move(server_side), nullptr),
                                                         ws::ConnectionOptions{.max_message = 1000, .close_timeout = 300ms});
    asio::post(connection_->executor(), [this] { connection_->start(registry_, {}, recorder_); });
    thread_ = std::thread([this] { ioc_.run(); });
  }
  void TearDown() override {
    connection_->close();
    connection_.reset();
    work_.reset();
    thread_.join();
  }
  // Reads one server frame (unmasked, < 126 bytes): its first byte and payload.
  std::pair<unsigned, std::string> read_frame() {
    unsigned char head[2];
    asio::read(client_, asio::buffer(head));
    std::string payload(head[1] & 0x7F, '\0');
    asio::read(client_, asio::buffer(payload));
    return {head[0], payload};
  }
  bool wait_registry_empty(std::chrono::milliseconds limit) {
    for (auto until = std::chrono::steady_clock::now() + limit; std::chrono::steady_clock::now() < until;) {
      if (registry_.size() == 0) return true;
      std::this_thread::sleep_for(5ms);  // polling a count the test cannot be told about
    }
    return registry_.size() == 0;
  }

  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(ioc_);
  http::ConnectionRegistry registry_;
  std::shared_ptr<Recorder> recorder_ = std::make_shared<Recorder>();
  tcp::socket client_{ioc_};
  std::shared_ptr<ws::ServerConnection> connection_;
  std::thread thread_;
};

TEST_F(WebSocketConnection, MessagesBothWaysAndPingsAreAnswered) {
  asio::write(client_, asio::buffer(client_frame(0x81, "hello") + client_frame(0x89, "p1")));
  const auto [pong_head, pong] = read_frame();
  EXPECT_EQ(pong_head, 0x8Au);
  EXPECT_EQ(pong, "p1");
  ASSERT_TRUE(connection_->send("to the client", false));
  const auto [head, text] = read_frame();
  EXPECT_EQ(head, 0x81u);
  EXPECT_EQ(text, "to the client");
  std::lock_guard lock(recorder_->mutex);
  EXPECT_EQ(recorder_->messages, std::vector<std::string>{"hello"});
}

TEST_F(WebSocketConnection, TheClientsCloseIsEchoedThenTheConnectionEnds) {
  asio::write(client_, asio::buffer(client_frame(0x88, std::string("\x0f\xa0", 2))));  // 4000
  const auto [head, payload] = read_frame();
  EXPECT_EQ(head, 0x88u);
  EXPECT_EQ(payload, std::string("\x0f\xa0", 2));  // the code echoed
  char byte;
  boost::system::error_code ec;
  client_.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_EQ(ec, asio::error::eof);  // then the TCP close
  EXPECT_EQ(recorder_->ended.get_future().wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(wait_registry_empty(5s));
  EXPECT_FALSE(connection_->send("late", false));
}

TEST_F(WebSocketConnection, AProtocolViolationSendsItsCloseCode) {
  asio::write(client_, asio::buffer(std::string("\x81\x02hi", 4)));  // unmasked
  const auto [head, payload] = read_frame();
  EXPECT_EQ(head, 0x88u);
  EXPECT_EQ(payload, std::string("\x03\xea", 2));  // 1002
  EXPECT_EQ(recorder_->ended.get_future().wait_for(5s), std::future_status::ready);
}

TEST_F(WebSocketConnection, AClientThatReadsNothingIsClosedWithinTheCloseTimeoutAfterEnd) {
  // Fill the socket buffers: the client reads nothing, so the writes stall.
  const std::string big(900, 'x');
  for (int i = 0; i < 20'000; ++i) ASSERT_TRUE(connection_->send(big, false));
  connection_->end();
  // Without the bound the write would stay pending, and the connection with it, for good.
  EXPECT_EQ(recorder_->ended.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_TRUE(wait_registry_empty(10s));
}

}  // namespace
