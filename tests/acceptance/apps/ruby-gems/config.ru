# A Rack app served by WEBrick (`rackup`), using gems from Debian packages:
# sqlite3 (a native extension linking libsqlite3), rack, webrick, and the
# standard library's native extensions (json, zlib, digest, openssl, bigdecimal).
require 'json'
require 'sqlite3'
require 'zlib'
require 'digest'
require 'openssl'
require 'bigdecimal'
require 'erb'
require 'set'

DB = SQLite3::Database.new(':memory:')
DB.execute('create table items(id integer primary key, name text, price real)')
%w[apple banana cherry durian elderberry].each_with_index do |n, i|
  DB.execute('insert into items(name, price) values (?, ?)', [n, (i + 1) * 1.25])
end
DB.execute("create virtual table notes using fts5(body)")
DB.execute("insert into notes values ('ruby talks to sqlite through a native extension'), ('webrick serves rack apps')")

PAGE = ERB.new("<ul><% items.each do |i| %><li><%= i[0] %>: <%= i[1] %></li><% end %></ul>\n")

def text(body) = [200, { 'content-type' => 'text/plain' }, [body.end_with?("\n") ? body : "#{body}\n"]]

ROUTES = {
  '/' => -> { text("ruby #{RUBY_VERSION} rack #{Rack.release} sqlite3 gem #{SQLite3::VERSION}") },
  '/items' => -> { [200, { 'content-type' => 'application/json' }, [JSON.generate(DB.execute('select id, name, price from items order by id').map { |r| { id: r[0], name: r[1], price: r[2] } })]] },
  '/search' => -> { text(DB.execute("select body from notes where notes match 'native OR rack' order by rowid").flatten.join("\n")) },
  '/sql' => -> { text(DB.execute('select sqlite_version() >= "3.0", count(*), sum(price), group_concat(upper(name), "|") from items').first.map(&:to_s).join(' ')) },
  '/digest' => lambda {
    data = 'imgslim' * 100
    z = Zlib::Deflate.deflate(data)
    text([Digest::SHA256.hexdigest(data), OpenSSL::HMAC.hexdigest('SHA256', 'key', data), Zlib.crc32(data).to_s, (Zlib::Inflate.inflate(z) == data).to_s].join("\n"))
  },
  '/decimal' => -> { text((BigDecimal('1.1') + BigDecimal('2.2')).to_s('F') + ' ' + Set[3, 1, 2, 3].sort.inspect) },
  '/page' => lambda {
    items = DB.execute('select name, price from items where price > 2 order by name')
    [200, { 'content-type' => 'text/html' }, [PAGE.result(binding)]]
  },
  '/parse' => -> { text(JSON.parse('{"a": [1, 2, {"b": "ü"}]}').dig('a', 2, 'b')) },
}.freeze

run lambda { |env|
  route = ROUTES[env['PATH_INFO']]
  route ? route.call : [404, { 'content-type' => 'text/plain' }, ["not found\n"]]
}
