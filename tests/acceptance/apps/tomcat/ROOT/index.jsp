<%@ page contentType="text/plain; charset=UTF-8" import="java.time.*,java.time.format.*,java.security.MessageDigest,java.util.*" %><%
// A JSP compiled by Jasper (with the Eclipse compiler) on first request.
String name = request.getParameter("name") == null ? "world" : request.getParameter("name");
MessageDigest md = MessageDigest.getInstance("SHA-256");
byte[] h = md.digest(name.getBytes("UTF-8"));
StringBuilder hex = new StringBuilder();
for (byte b : h) hex.append(String.format("%02x", b));
ZonedDateTime t = Instant.ofEpochSecond(1720000000L).atZone(ZoneId.of("Europe/Paris"));
%>hello <%= name %>
sha256 <%= hex %>
paris <%= t.format(DateTimeFormatter.ISO_OFFSET_DATE_TIME) %>
servlet <%= application.getMajorVersion() %>.<%= application.getMinorVersion() %>
session <%= session.isNew() %>
